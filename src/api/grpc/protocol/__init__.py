"""The Open Inference Protocol's gRPC messages: open_inference.proto and the modules protoc makes of it."""
