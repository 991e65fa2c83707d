"""TORCH side: LoRA (peft) fine-tuning through instruction templates."""

from rec_edge.train.trainer import TrainResult, train

__all__ = ["TrainResult", "train"]
