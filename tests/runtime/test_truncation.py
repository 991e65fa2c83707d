"""Long texts are cut before they are encoded, and the tokens kept are those of the whole text."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer

from rec_edge.data.prompts import fit_prompt
from rec_edge.runtime.tokenize import BundleTokenizer

SHAPES = {
    "prose": "The quick brown fox jumps over the lazy dog. " * 5000,
    "whitespace run": "start " + " " * 200_000 + " ".join(["word"] * 400),
    "one giant word": "x" * 300_000 + " tail",
    "long words": " ".join(["antidisestablishmentarianism"] * 3000),
    "no spaces cjk": "自然语言处理" * 20_000,
    "newlines": "line one\nline two\n" * 10_000,
    "punctuation": "!?" * 100_000,
}


class Recording:
    """The tokenizer's own methods, recording the longest text each was given."""

    def __init__(self, tokenizer: Tokenizer):
        self.tokenizer = tokenizer
        self.longest = 0

    def encode(self, text: str, **options: object):  # type: ignore[no-untyped-def]
        self.longest = max(self.longest, len(text))
        return self.tokenizer.encode(text, **options)

    def encode_batch(self, texts: list[str]):  # type: ignore[no-untyped-def]
        self.longest = max([self.longest, *map(len, texts)])
        return self.tokenizer.encode_batch(texts)


@pytest.fixture(scope="module")
def tokenizers(minilm_path: str) -> tuple[BundleTokenizer, Tokenizer]:
    path = Path(minilm_path) / "tokenizer.json"
    whole = Tokenizer.from_file(str(path))
    whole.no_padding()
    whole.enable_truncation(32)
    return BundleTokenizer(path, 32), whole


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_a_long_text_keeps_the_whole_texts_tokens(tokenizers, shape: str) -> None:  # type: ignore[no-untyped-def]
    bundle, whole = tokenizers
    text = SHAPES[shape]
    expected = whole.encode(text)
    alone = bundle.encode([text])[0]
    batch = bundle.encode(["short one", text, "another"])[1]
    assert alone.ids == batch.ids == expected.ids
    assert bool(alone.overflowing) == bool(batch.overflowing) == bool(expected.overflowing)


def test_a_long_text_is_not_encoded_whole(tokenizers) -> None:  # type: ignore[no-untyped-def]
    bundle, _ = tokenizers
    recording = Recording(bundle.tokenizer)
    bundle.tokenizer = recording  # type: ignore[assignment]
    bundle.encode([SHAPES["prose"]])
    bundle.encode([SHAPES["prose"], SHAPES["long words"]])
    assert 0 < recording.longest <= 32 * 8  # max_length x CHARS_PER_TOKEN
    bundle.encode([SHAPES["whitespace run"]])  # the cut falls short: read further, then whole
    assert recording.longest == len(SHAPES["whitespace run"])


WORDS = st.sampled_from(["a", "cat", "naïve", "3.14", "don't", "东京", "##", "-", "\n", "   "])


@settings(max_examples=150, deadline=None)
@given(pieces=st.lists(WORDS, min_size=0, max_size=400), joiner=st.sampled_from([" ", "", "\t"]))
def test_any_text_keeps_the_whole_texts_tokens(tokenizers, pieces: list[str], joiner: str) -> None:  # type: ignore[no-untyped-def]
    bundle, whole = tokenizers
    text = joiner.join(pieces)
    assert bundle.encode([text])[0].ids == whole.encode(text).ids
    assert bundle.encode([text, "x"])[0].ids == whole.encode(text).ids


@pytest.mark.parametrize("keep", ["start", "end"])
@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_a_long_prompt_keeps_the_whole_prompts_tokens(
    decoder_bundle: Path, shape: str, keep: str
) -> None:
    from rec_edge.runtime import Generator

    generator = Generator.load(decoder_bundle)
    prompt = generator.prompt(SHAPES[shape])
    room = 8
    limit = generator.manifest.max_length - room
    spec = generator.spec
    expected = fit_prompt(
        generator.encode(prompt),
        len(generator.encode(spec.prompt_prefix)),
        len(generator.encode(spec.prompt_suffix)),
        limit,
        keep,
    )
    assert generator._prompt_ids(prompt, room, keep) == expected
    if shape in ("prose", "long words", "newlines"):  # words: read a few thousand characters
        assert len(generator._bounded(prompt, limit, keep)) < 4 * limit * 8
    # an unbroken run (one byte-level pre-token of 200,000 characters) is encoded whole: no cut
    # inside it can be proven harmless
