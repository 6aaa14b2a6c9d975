"""Serving-side model code: numpy only, never torch: the service and the streaming path never import training."""
