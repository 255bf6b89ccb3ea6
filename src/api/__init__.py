"""The HTTP adapters: the FastAPI app, its routing and policy, errors, schemas, JSON routes and V2."""
