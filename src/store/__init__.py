"""The model format and store: versioned folders, the registry of named models, the skops file, its checks."""
