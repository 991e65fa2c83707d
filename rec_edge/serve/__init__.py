"""TORCH-FREE serving: `rec-edge serve`, an HTTP server (Starlette on uvicorn) over the Predictor
with dynamic micro-batching, limits, backpressure, auth, metrics and hot reload ([serve] extra)."""

from rec_edge.serve.batcher import MicroBatcher, Overloaded
from rec_edge.serve.server import create_app, serve

__all__ = ["MicroBatcher", "Overloaded", "create_app", "serve"]
