"""Tenants: API keys with scopes, models and rates; feedback that only the asking key can give."""
