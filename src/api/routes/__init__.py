"""The service's routers, one per resource, collected in the order they appear in the OpenAPI."""

from src.api.routes import health, model, predict

ROUTERS = (predict.router, health.router, model.router)
