"""The serving core: the served models, the data plane, the predictor and explanations; no HTTP."""
