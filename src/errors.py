"""Domain errors, each carrying the HTTP status a client should see.

ServiceError                      base: message + status_code (500); a 413 for a body over
│                                 MAX_BODY_BYTES comes from the body-limit middleware, before any parsing
├── InvalidInputError             422: the request breaks a rule of the API
├── UnsupportedMediaTypeError     415: the body is not declared as JSON
├── UnauthorizedError             401: no API key where one is needed
├── ForbiddenError                403: a wrong API key, or admin endpoints with none configured
├── UnknownModelError             404: no model of that name (or version) is served here
├── ModelNotReadyError            503: no verified model is loaded yet
└── ModelStoreError               500: the model store cannot give a usable model
    ├── ModelNotFoundError        the store holds no published model (or not that version)
    └── ModelVerificationError    a stored model failed a check: hash, versions, trusted types
DatasetError                      training data cannot be used (not an HTTP error)
"""

from __future__ import annotations


class ServiceError(Exception):
    """An error with a message safe to show a client and the HTTP status that goes with it."""

    status_code = 500

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status_code is not None:
            self.status_code = status_code

    @property
    def detail(self) -> object:
        """The `detail` of the JSON error body."""
        return self.message


class InvalidInputError(ServiceError):
    """The request breaks a rule of the API; `loc` names the field, as in FastAPI's own 422s."""

    status_code = 422

    def __init__(self, message: str, *, loc: tuple[str | int, ...] = ()) -> None:
        super().__init__(message)
        self.loc = loc

    @property
    def detail(self) -> object:
        """FastAPI's 422 shape, so clients parse every validation error the same way."""
        return [{"loc": list(self.loc), "msg": self.message, "type": "value_error"}]


class UnsupportedMediaTypeError(ServiceError):
    """The request body is not declared as the JSON the API takes."""

    status_code = 415


class UnauthorizedError(ServiceError):
    """The request needs an API key and carries none."""

    status_code = 401


class ForbiddenError(ServiceError):
    """The API key is not one the service accepts."""

    status_code = 403


class UnknownModelError(ServiceError):
    """No model of that name, or not that version, is served by this server."""

    status_code = 404


class ModelNotReadyError(ServiceError):
    """No verified model is loaded, so nothing can be predicted yet."""

    status_code = 503


class ModelStoreError(ServiceError):
    """The model store cannot provide a usable model."""


class ModelNotFoundError(ModelStoreError):
    """The store holds no published model, or not the version asked for."""

    status_code = 404


class ModelVerificationError(ModelStoreError):
    """A stored model failed verification and must not be served."""


class DatasetError(Exception):
    """Training data that cannot be used, with a one-line reason."""
