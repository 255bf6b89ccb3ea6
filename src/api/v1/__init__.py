"""KServe's V1 protocol (TensorFlow Serving's REST predict API)."""
