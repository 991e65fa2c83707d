"""Shared fixtures: a tiny random BERT (plumbing), the real MiniLM (quality), small data sets."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest

from tests.helpers import DECODER_LABELS, make_examples, tiny_train_config, write_jsonl

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# measured run lengths (runtime.runs) go to a folder of this test session, not the user's cache;
# every Predictor runs 4 texts a run unless a test measures (tests/runtime/test_run_length.py)
os.environ.setdefault("REC_EDGE_CACHE_DIR", tempfile.mkdtemp(prefix="rec-edge-cache-"))
os.environ.setdefault("REC_EDGE_RUN_LENGTH", "4")


@pytest.fixture(scope="session")
def minilm_path() -> str:
    from rec_edge.models import resolve_model

    return resolve_model("minilm")


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory, minilm_path: str) -> str:
    """A 2-layer random BERT with MiniLM's tokenizer: fast, for plumbing tests. Seeded: its
    weights must not depend on which tests drew from torch's global generator before it."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    folder = tmp_path_factory.mktemp("tiny-bert")
    config = BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    with torch.random.fork_rng():
        torch.manual_seed(0)
        BertModel(config).save_pretrained(folder)
    AutoTokenizer.from_pretrained(minilm_path).save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="session")
def topic_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("topics")
    return {
        "train": write_jsonl(folder / "train.jsonl", make_examples(40, seed=1)),
        "test": write_jsonl(folder / "test.jsonl", make_examples(10, seed=2)),
    }


@pytest.fixture(scope="session")
def tiny_run(
    tmp_path_factory: pytest.TempPathFactory, tiny_model: str, topic_files: dict[str, Path]
):  # type: ignore[no-untyped-def]
    """A finished run of the tiny model on the synthetic topics (full fine-tuning: a random
    2-layer model learns the topics well enough for int8-vs-fp32 comparisons; LoRA is tested apart)."""
    from rec_edge.train import train

    return train(tiny_train_config(tiny_model, topic_files, tmp_path_factory.mktemp("runs")))


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory, tiny_run) -> Path:  # type: ignore[no-untyped-def]
    """The tiny run exported with the default gate (int8 if it passes)."""
    from rec_edge.config import ExportConfig
    from rec_edge.export import export

    out = tmp_path_factory.mktemp("exports") / "tiny"
    return export(
        ExportConfig(run_dir=str(tiny_run.run_dir), out=str(out), keep_fp32=True),
        log=lambda _: None,
    ).bundle_dir


@pytest.fixture(scope="session")
def rank_bundle(tmp_path_factory, tiny_model):  # type: ignore[no-untyped-def]
    """A rank run of the tiny model on synthetic interactions, exported in fp32."""
    from rec_edge.config import ExportConfig
    from rec_edge.export import export
    from rec_edge.train import train
    from tests.helpers import write_interactions

    folder = tmp_path_factory.mktemp("rank")
    write_interactions(folder, users=12, items=40, per_user=20, seed=4)
    config = tiny_train_config(
        tiny_model,
        {"train": folder / "inter.jsonl", "test": folder / "inter.jsonl"},
        folder,
        name="rank",
        task="rank",
        items_file=str(folder / "items.jsonl"),
        test_file=None,
        max_length=96,
        epochs=2,
        negatives=2,  # the flattened [batch * 2] negative batch and its [batch, 2] scores
    )
    run = train(config)
    assert run.metrics["test"] is not None and run.metrics["test"]["n"] > 0
    run_json = json.loads((run.run_dir / "run.json").read_text())
    assert run_json["task"] == "rank" and run_json["labels"] == ["no", "yes"]
    assert run_json["templates"]["task"] == "rank"
    result = export(
        ExportConfig(run_dir=str(run.run_dir), out=str(folder / "bundle"), quantize="fp32"),
        log=lambda _: None,
    )
    return result.bundle_dir


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer random Llama (grouped-query attention, tied embeddings) with SmolLM2's tokenizer."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from rec_edge.models import resolve_model

    gguf = Path(resolve_model("smollm2"))
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        tie_word_embeddings=True,
        bos_token_id=1,
        eos_token_id=2,
    )
    folder = tmp_path_factory.mktemp("tiny-llama")
    with torch.random.fork_rng():
        torch.manual_seed(0)
        LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def decoder_bundle(tiny_llama: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A classify decoder bundle (fp32) of the tiny Llama: three labels and an instruction."""
    from rec_edge.config import DecoderExportConfig
    from rec_edge.export.decoder import export_decoder

    out = tmp_path_factory.mktemp("decoder-bundle") / "reviews"
    config = DecoderExportConfig(
        model=str(tiny_llama),
        out=str(out),
        task="classify",
        labels=DECODER_LABELS,
        instruction="How does this review feel?",
        weights="fp32",
    )
    export_decoder(config)
    return out


@pytest.fixture(scope="session")
def writer_bundle(tiny_llama: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generate decoder bundle (fp32) of the tiny Llama: it writes (nonsense, quickly)."""
    from rec_edge.config import DecoderExportConfig
    from rec_edge.export.decoder import export_decoder

    out = tmp_path_factory.mktemp("writer") / "writer"
    export_decoder(DecoderExportConfig(model=str(tiny_llama), out=str(out), weights="fp32"))
    return out


# Session fixtures that train or export a model: a test that uses one is slow, whatever its marks
BUILDS_A_MODEL = {
    "tiny_run",
    "tiny_bundle",
    "rank_bundle",
    "server",
    "tiny_llama",
    "decoder_bundle",
    "writer_bundle",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if BUILDS_A_MODEL & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
