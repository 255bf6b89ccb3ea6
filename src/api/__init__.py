"""The HTTP adapters: the FastAPI app, its routing and policy, errors, schemas, JSON routes and V2."""

API_VERSION = "1.1.0"
"""The API's version, in the OpenAPI schema and the Open Inference Protocol's server metadata."""
