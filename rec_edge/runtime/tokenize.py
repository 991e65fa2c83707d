"""Tokenization with `tokenizers` alone, from the bundle's tokenizer.json; padding per batch.
Torch-free. A long text is cut before it is encoded, where the cut cannot change the tokens kept."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
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
        """Each text's encoding, cut to ``max_length`` tokens (``overflowing`` set where it was):
        a text of a megabyte costs what its first few thousand characters cost."""
        chars = self.max_length * CHARS_PER_TOKEN
        if len(texts) == 1:  # no thread-pool hand-off for the common latency-bound call
            return [self._encode_long(texts[0], chars)]
        heads = [leading_words(text, chars) for text in texts]
        encodings = list(self.tokenizer.encode_batch(heads))
        for row, (text, head) in enumerate(zip(texts, heads, strict=True)):
            if len(head) < len(text) and not self._kept_whole(encodings[row]):
                encodings[row] = self._encode_long(text, chars * 4)
        return encodings

    def _encode_long(self, text: str, chars: int) -> Encoding:
        while chars < len(text):
            encoding = self.tokenizer.encode(leading_words(text, chars))
            if self._kept_whole(encoding):
                return encoding
            chars *= 4
        return self.tokenizer.encode(text)

    @staticmethod
    def _kept_whole(encoding: Encoding) -> bool:
        """Whether the tokens kept come from words before the last one read: then the rest of
        the text could not have changed them (a cut word's pieces are at its end)."""
        if not encoding.overflowing:
            return False
        kept = max((w for w in encoding.word_ids if w is not None), default=-1)
        read = max((w for w in encoding.overflowing[-1].word_ids if w is not None), default=-1)
        return kept < read


CHARS_PER_TOKEN = 8  # a first guess at the characters a token spans; a cut that falls short grows


def leading_words(text: str, chars: int) -> str:
    """At most the first ``chars`` characters of ``text``, ended before a whitespace in its last
    half where there is one: the words read whole but the last. ``text`` itself if it is short."""
    if len(text) <= chars:
        return text
    space = _LAST_SPACE.search(text, chars // 2, chars)
    return text[: space.start()] if space else text[:chars]


def trailing_words(text: str, chars: int) -> str:
    """``leading_words`` from the end: at most the last ``chars`` characters, begun at a
    whitespace in their first half where there is one."""
    if len(text) <= chars:
        return text
    start = len(text) - chars
    space = _FIRST_SPACE.search(text, start, start + chars // 2)
    return text[space.start() :] if space else text[start:]


def bounded_text(
    text: str, tokens: int, encode: Callable[[str], Encoding], keep: str = "start"
) -> str:
    """The part of ``text`` whose encoding holds the ``tokens`` tokens at its start
    (``keep="start"``) or end (``"end"``) exactly as the whole text's does, read from no more
    characters than that needs; ``text`` itself where a cut cannot be proven harmless."""
    chars = tokens * CHARS_PER_TOKEN
    cut = leading_words if keep == "start" else trailing_words
    while chars < len(text):
        part = cut(text, chars)
        words = [w for w in encode(part).word_ids if w is not None]
        edge = (words[-1] if keep == "start" else words[0]) if words else -1
        if sum(w != edge for w in words) >= tokens:
            return part
        chars *= 4
    return text


_LAST_SPACE = re.compile(r"\s\S*\Z")  # the last whitespace before ``endpos``
_FIRST_SPACE = re.compile(r"\s")


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
