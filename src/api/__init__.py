"""The HTTP service: the FastAPI app, its routes, middleware and serving machinery."""

API_VERSION = "1.1.0"
"""The API's version, in the OpenAPI schema and the Open Inference Protocol's server metadata."""
