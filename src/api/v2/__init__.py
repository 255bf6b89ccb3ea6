"""The Open Inference Protocol (KServe V2) over REST: the routes and the tensor codec."""
