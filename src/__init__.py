"""ml-service: serve scikit-learn text classifiers."""

API_VERSION = "1.1.0"
"""The service's version: in the OpenAPI schema, the protocols' server metadata and `ml-service --version`."""
