"""The serving core: the served models, the data plane, the scoring engines and explanations; no HTTP."""
