"""MLflow's scoring protocol (`mlflow models serve`, SageMaker)."""
