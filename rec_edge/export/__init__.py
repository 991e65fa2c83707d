"""TORCH side: merged model -> ONNX (optimum) -> portable fusions -> quantization -> bundle."""

from rec_edge.export.pipeline import ExportResult, export

__all__ = ["ExportResult", "export"]
