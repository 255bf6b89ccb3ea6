"""The Open Inference Protocol over gRPC (`inference.GRPCInferenceService`), one more adapter over the data plane."""
