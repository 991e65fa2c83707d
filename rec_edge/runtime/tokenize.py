"""Tokenization with `tokenizers` alone, from the bundle's tokenizer.json; padding per batch."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tokenizers import Encoding, Tokenizer

from rec_edge.errors import BundleError


class BundleTokenizer:
    def __init__(self, path: Path, max_length: int):
        try:
            self.tokenizer = Tokenizer.from_file(str(path))
        except Exception as error:  # tokenizers raises a bare Exception on a bad file
            raise BundleError(
                f"{path} is not a valid tokenizer.json ({error}). Re-export the bundle."
            ) from None
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length)
        self.max_length = max_length
        padding = self.tokenizer.padding
        self.pad_id = int(padding["pad_id"]) if padding else self._find_pad_id()

    def _find_pad_id(self) -> int:
        for token in ("[PAD]", "<pad>", "<|endoftext|>", "</s>"):
            token_id = self.tokenizer.token_to_id(token)
            if token_id is not None:
                return int(token_id)
        return 0

    def encode(self, texts: Sequence[str]) -> list[Encoding]:
        if len(texts) == 1:  # no thread-pool hand-off for the common latency-bound call
            return [self.tokenizer.encode(texts[0])]
        return list(self.tokenizer.encode_batch(list(texts)))


def pad_batch(encodings: Sequence[Encoding], pad_id: int) -> dict[str, np.ndarray]:
    """int64 arrays [batch, longest in this batch]: input_ids, attention_mask, token_type_ids."""
    longest = max(len(e.ids) for e in encodings)
    shape = (len(encodings), longest)
    input_ids = np.full(shape, pad_id, dtype=np.int64)
    attention_mask = np.zeros(shape, dtype=np.int64)
    token_type_ids = np.zeros(shape, dtype=np.int64)
    for row, encoding in enumerate(encodings):
        n = len(encoding.ids)
        input_ids[row, :n] = encoding.ids
        attention_mask[row, :n] = 1
        token_type_ids[row, :n] = encoding.type_ids
    return {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "token_type_ids": token_type_ids,
    }
