"""Domain errors, each carrying the HTTP status a client should see; built from fields, not sentences.

ServiceError                      base: message + status_code (500); `retry_after` for a 503
├── BadRequestError               400: a request that breaks its protocol (V2 tensors, framing)
├── InvalidInputError             422: a field breaks a rule; `loc` names where (V2 answers it 400)
│   └── ModelFailedError          422: the model raised on this text (a valid one): named, never a bare 500
├── UnsupportedMediaTypeError     415: the body is not declared as JSON
├── PayloadTooLargeError          413: a body over MAX_BODY_BYTES
├── UnauthorizedError             401: no API key where one is needed
├── ForbiddenError                403: a wrong API key, a key without the scope or model, admin with none configured
├── ConflictError                 409: a second correction of a text (the first one stands)
├── RateLimitedError              429 with Retry-After: the key is past its rate
├── UnknownModelError             404: no model of that name is served here
├── UnknownVersionError           404: the model serves another version than the one named
├── FeatureOffError               404: an endpoint whose setting is off (feedback without a prediction log)
├── NotExplainableError           501: the model's engine gives no explanations
├── ServiceUnavailableError       503 with Retry-After
│   ├── ModelNotReadyError        no verified version of the model is loaded yet
│   └── OverloadedError           the worker has more requests queued than MAX_PENDING_REQUESTS
└── ModelStoreError               500: the model store cannot give a usable model
    ├── ModelNotFoundError        404: the store holds no published model (or not that version)
    └── ModelVerificationError    a stored model failed a check: hash, versions, trusted types
DatasetError                      training data cannot be used (not an HTTP error)

A client's input is echoed in a message only through `quoted()`, so an error is never larger than
what the service chooses to say.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

ECHO_LIMIT = 80
RETRY_AFTER_SECONDS = 5


def quoted(value: object, limit: int = ECHO_LIMIT) -> str:
    """`repr` of a client's value, cut to `limit` characters (a 5,000-character name is not echoed whole)."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


class ServiceError(Exception):
    """An error with a message safe to show a client and the HTTP status that goes with it."""

    status_code = 500
    retry_after: int | None = None

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def detail(self) -> object:
        """The `detail` of the JSON error body."""
        return self.message


class BadRequestError(ServiceError):
    """The request breaks its protocol's encoding (a V2 tensor, framing)."""

    status_code = 400


class InvalidInputError(ServiceError):
    """The request breaks a rule of the API; `loc` names the field, as in FastAPI's own 422s.

    The serving core knows texts, not requests: it says which text (`text_index`, None for the batch
    as a whole) and leaves `loc` empty; each protocol's adapter places it in its own request (`at`)."""

    status_code = 422

    def __init__(self, message: str, *, loc: tuple[str | int, ...] = (), text_index: int | None = None) -> None:
        super().__init__(message)
        self.loc = loc
        self.text_index = text_index

    def at(self, text: Callable[[int], tuple[str | int, ...]], batch: tuple[str | int, ...]) -> InvalidInputError:
        """This error placed in a protocol's request: at its text, or at the batch; as it is if placed already."""
        if not self.loc:
            self.loc = batch if self.text_index is None else text(self.text_index)
        return self

    @property
    def detail(self) -> object:
        """FastAPI's 422 shape, so clients parse every validation error the same way."""
        return [{"loc": list(self.loc), "msg": self.message, "type": "value_error"}]

    @property
    def located(self) -> str:
        """The message with where the request holds the field, for protocols whose errors are one string."""
        return f"{self.message} (at {'.'.join(map(str, self.loc))})" if self.loc else self.message


class ModelFailedError(InvalidInputError):
    """The model raised on one text of the request: that text is named, and the status says the model
    cannot process it (the text breaks no rule of the API)."""

    def __init__(self, name: str, version: str, error: BaseException, *, text_index: int | None = None) -> None:
        # The model's own message is left out: it may repeat the text, and errors reach the prediction log.
        super().__init__(
            f"model {name} version {version} failed on this text ({type(error).__name__}); "
            "the text breaks no rule, the model cannot score it",
            text_index=text_index,
        )


class UnsupportedMediaTypeError(ServiceError):
    """The request body is not declared as a type the route takes (JSON, unless it says otherwise)."""

    status_code = 415

    def __init__(self, content_type: str, accepted: str = "application/json") -> None:
        super().__init__(f"Content-Type must be {accepted}, not {quoted(content_type) if content_type else 'missing'}")


class PayloadTooLargeError(ServiceError):
    """The request body is over the limit."""

    status_code = 413

    def __init__(self, limit: int) -> None:
        super().__init__(f"request body is larger than the limit of {limit} bytes (MAX_BODY_BYTES)")


class UnauthorizedError(ServiceError):
    """The request needs an API key and carries none."""

    status_code = 401


class ForbiddenError(ServiceError):
    """The API key is not one the service accepts."""

    status_code = 403


class ConflictError(ServiceError):
    """The request repeats one that may happen only once."""

    status_code = 409


class RateLimitedError(ServiceError):
    """The key has used its rate (requests per second, shared by the workers of a pod) and its burst."""

    status_code = 429

    def __init__(self, key_id: str, kind: str, rate: float, retry_after: float) -> None:
        super().__init__(
            f"key {key_id!r} is over its {kind} rate of {rate:g} per second; retry after {retry_after:.2f} s"
        )
        self.retry_after = max(1, math.ceil(retry_after))


class UnknownModelError(ServiceError):
    """No model of that name is served by this server."""

    status_code = 404

    def __init__(self, name: str, served: Iterable[str]) -> None:
        """`served`: the models the asker may see, which are all it is told of."""
        names = ", ".join(sorted(served))
        super().__init__(f"no model named {quoted(name)} is served here" + (f" (models: {names})" if names else ""))
        self.name = name


class UnknownVersionError(UnknownModelError):
    """The model is served, but not in the version asked for."""

    def __init__(self, name: str, version: str, serving: str) -> None:
        ServiceError.__init__(self, f"model {name!r} has no version {quoted(version)} loaded (serving {serving})")
        self.name = name


class FeatureOffError(ServiceError):
    """An endpoint that needs a setting this server does not have."""

    status_code = 404


class NotExplainableError(ServiceError):
    """The model is scored by an engine that gives no explanations."""

    status_code = 501

    def __init__(self, name: str, version: str, why: str = "") -> None:
        because = f" (it is not compiled: {why})" if why else ""
        super().__init__(
            f"model {name} version {version} is served through scikit-learn, which gives no explanations{because}"
        )


class ServiceUnavailableError(ServiceError):
    """Nothing can be answered now; the client should retry after `retry_after` seconds."""

    status_code = 503
    retry_after = RETRY_AFTER_SECONDS


class ModelNotReadyError(ServiceUnavailableError):
    """No verified version of the model is loaded, so nothing can be predicted with it yet."""

    def __init__(self, name: str, reason: str, retry_after: float | None = None) -> None:
        super().__init__(f"model {name} is not loaded: {reason}")
        if retry_after is not None:
            self.retry_after = max(1, math.ceil(retry_after))


class OverloadedError(ServiceUnavailableError):
    """The worker already has more requests waiting than it takes."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"overloaded: more than {limit} requests queued (MAX_PENDING_REQUESTS); retry later")


class ModelStoreError(ServiceError):
    """The model store cannot provide a usable model."""


class ModelNotFoundError(ModelStoreError):
    """The store holds no published model, or not the version asked for."""

    status_code = 404


class ModelVerificationError(ModelStoreError):
    """A stored model failed verification and must not be served."""


class DatasetError(Exception):
    """Training data that cannot be used, with a one-line reason."""
