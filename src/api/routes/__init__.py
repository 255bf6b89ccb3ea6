"""The service's routers, one per resource, collected in the order they appear in the OpenAPI."""

from src.api.mlflow import routes as mlflow
from src.api.routes import feedback, health, model, monitoring, playground, predict
from src.api.v1 import routes as v1
from src.api.v2 import routes as v2

ROUTERS = (
    predict.router,
    v2.router,
    v1.router,
    mlflow.router,
    health.router,
    model.router,
    feedback.router,
    monitoring.router,
    playground.router,
)
