"""TORCH: the export verb for a causal language model: load, ONNX with the KV cache, parity with
PyTorch, weight-only int4 / int8 behind a gate, and a decoder bundle (``family: decoder``).

The gate: fp32 writes a greedy answer to each probe prompt; each quantized candidate reads the
same prompt and answer (teacher forcing) and must pick fp32's next token at ``min_agreement`` of
the positions. The answer's mean negative log-likelihood under each graph is reported beside it.
A classify or rank run's export (``run_dir``) judges by what the bundle is for instead: label
accuracy (AUC for rank) on the run's validation rows (at most ``GATE_ROWS``), at most
``max_accuracy_drop`` below fp32's. A candidate that falls short gives way to the next wider one (int4, int8, fp32).
A classify bundle may subtract each label's prior (its probability after content-free inputs,
``runtime.generative.CONTENT_FREE``: contextual calibration), as ``calibrate`` says; each
candidate is gated with its own prior. A rank run's collaborative tables and stack, fitted over
the decoder's score at training (``recommend.collab``), go into the bundle as its item index
(``items.npz``).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from rec_edge.bundle import Manifest, write_manifest
from rec_edge.config import DecoderExportConfig, GenerationConfig, config_to_dict
from rec_edge.convert.causal import (
    ChatFormat,
    cache_shape,
    chat_format,
    export_decoder_onnx,
    keep_last_logits,
    load_causal_lm,
    quantize_weights,
    save_graph,
    stop_token_ids,
)
from rec_edge.convert.llama_graph import build_llama_graph, supports
from rec_edge.data.prompts import (
    RANK_ANSWERS,
    RANK_CANDIDATE,
    RANK_HISTORY,
    USER_TEMPLATE,
    label_instruction,
)
from rec_edge.errors import AccuracyGateError
from rec_edge.export.folders import check_target, replace_folder, scratch_folders
from rec_edge.metrics import roc_auc
from rec_edge.models import resolve_model
from rec_edge.runtime.generative import GenerativeClassifier, GenerativeRanker
from rec_edge.runtime.generator import Generator
from rec_edge.runtime.requests import RankRequest
from rec_edge.tasks import task_spec
from rec_edge.versions import versions

RANK_FIELDS = {
    "rank_history": RANK_HISTORY,
    "rank_candidate": RANK_CANDIDATE,
    "rank_answers": list(RANK_ANSWERS),
}
# Generic instructions for the gate when no data is given: short tasks of several kinds
PROBE_PROMPTS = (
    "Write one sentence about the sea.",
    "Is this review positive or negative? 'The battery died after two days.'",
    "Translate to French: good morning, my friend.",
    "List three colours.",
    "What is 12 plus 7?",
    "Summarize in a few words: the meeting moved from Monday to Thursday afternoon.",
    "Which topic is this about: 'The striker scored twice in the final'?",
    "Give a title for a story about a lost dog.",
)
PROBE_TOKENS = 24  # greedy tokens written by fp32 for each probe
GATE_ROWS = 256  # validation rows a classify gate reads (the first, in the run's order)
WIDER = {"int4": ("int4", "int8", "fp32"), "int8": ("int8", "fp32"), "fp32": ("fp32",)}


@dataclass
class DecoderExportResult:
    out: Path
    weights: str  # what the gate kept
    gate: list[dict[str, Any]]
    parity: dict[str, Any]
    size_bytes: int
    calibration: dict[str, Any]  # whether the labels' prior is subtracted, and why


def export_decoder(config: DecoderExportConfig) -> DecoderExportResult:
    """``config.model`` to a decoder bundle in ``config.out`` (see the module's docstring)."""
    out = Path(config.out)
    check_target(out, config.force, [config.model, *([config.run_dir] if config.run_dir else [])])
    out.parent.mkdir(parents=True, exist_ok=True)
    work, staging = scratch_folders(out)
    try:
        model, tokenizer, fmt = _load(config)
        fp32_dir = _fp32_bundle(config, model, tokenizer, fmt, work)
        parity = _parity(model, fp32_dir)
        del model  # the weights are in the graph now; free the memory before quantizing
        reference, rows = Generator.load(fp32_dir), _validation_rows(config)
        calibration, baseline = _calibration(config, reference, rows)
        gate, kept = _gate(config, reference, work, rows, calibration["used"], baseline)
        _assemble(config, kept, staging, gate, parity, calibration)
        replace_folder(staging, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(staging, ignore_errors=True)
    size = sum(p.stat().st_size for p in out.iterdir() if p.name.startswith("model.onnx"))
    weights = next(row["weights"] for row in gate if row["kept"])
    return DecoderExportResult(out, weights, gate, parity, size, calibration)


def _load(config: DecoderExportConfig) -> tuple[Any, Any, ChatFormat]:
    model, tokenizer = load_causal_lm(resolve_model(config.model))
    return model, tokenizer, chat_format(tokenizer)


def _fp32_bundle(
    config: DecoderExportConfig, model: Any, tokenizer: Any, fmt: ChatFormat, work: Path
) -> Path:
    """The fp32 graph as a complete bundle (the runtime reads it for parity and the gate)."""
    bundle = work / "fp32"
    graph, made_by = _decoder_graph(config, model, tokenizer, work)
    bundle.mkdir()
    import onnx

    keep_last_logits(graph)  # a prompt's run computes the output layer for its last token only
    save_graph(graph, bundle / "model.onnx")
    shutil.copy(work / "hf" / "tokenizer.json", bundle / "tokenizer.json")
    graph = onnx.load(str(bundle / "model.onnx"), load_external_data=False)
    decoder = {
        "prompt_prefix": fmt.prefix,
        "prompt_suffix": fmt.suffix,
        "end_of_turn": fmt.end_of_turn,
        "stop_token_ids": stop_token_ids(model, tokenizer, fmt),
        **cache_shape(model),
        "user_template": USER_TEMPLATE,
        "instruction": _instruction(config),
        "label_words": dict(config.labels) or None,
        **(RANK_FIELDS if task_spec(config.task).ranks else {}),
        "architecture": type(model).__name__,
        "chat_template": getattr(tokenizer, "chat_template", None) or None,
        "special_tokens": {
            name: str(getattr(tokenizer, name))
            for name in ("bos_token", "eos_token")
            if getattr(tokenizer, name, None) is not None
        },
    }
    manifest = Manifest(
        task=config.task,
        labels=list(task_spec(config.task).answer_labels or config.labels),
        templates={},
        max_length=min(config.max_length, int(model.config.max_position_embeddings)),
        inputs=[i.name for i in graph.graph.input],
        outputs=[o.name for o in graph.graph.output],
        source={"model": config.model, "architecture": type(model).__name__, "graph": made_by},
        family="decoder",
        decoder=decoder,
    )
    write_manifest(bundle, manifest)
    return bundle


def _decoder_graph(
    config: DecoderExportConfig, model: Any, tokenizer: Any, work: Path
) -> tuple[Any, str]:
    """The fp32 graph and what wrote it: rec-edge's builder of fused operators where it knows
    the model (convert.llama_graph), optimum's export otherwise (or with ``graph="optimum"``)."""
    hf = work / "hf"
    tokenizer.save_pretrained(hf)
    reason = supports(model) if config.graph == "fused" else "asked for"
    if reason is None:
        return build_llama_graph(model), "fused"
    import onnx

    model.save_pretrained(hf)
    export_decoder_onnx(hf, work / "onnx")
    return onnx.load(str(work / "onnx" / "model.onnx")), f"optimum ({reason})"


def _parity(model: Any, fp32_dir: Path) -> dict[str, Any]:
    """PyTorch's and the fp32 graph's logits on one probe prompt: the largest difference."""
    import torch

    generator = Generator.load(fp32_dir)
    ids = generator.encode(generator.prompt(PROBE_PROMPTS[0]))
    with torch.no_grad():
        reference = model(torch.tensor([ids])).logits[0].float().numpy()
    diff = float(np.abs(generator.sequence_logits(ids) - reference).max())
    return {"max_abs_diff": diff, "tokens": len(ids), "atol": 1e-3, "pass": diff <= 1e-3}


def _calibration(
    config: DecoderExportConfig, reference: Generator, rows: list[Any]
) -> tuple[dict[str, Any], float | None]:
    """Whether a classify bundle subtracts its labels' prior (``config.calibrate``): as asked,
    or on ``auto`` where it raises fp32's accuracy on a run's validation ``rows``, and always
    without rows (an untuned model's bias toward some label words is its largest error there).
    Also fp32's metric on the rows as the bundle computes it (None without rows)."""
    if not isinstance(reference, GenerativeClassifier):
        return {"used": False}, _measure(reference, rows) if rows else None
    if not rows:
        used = config.calibrate != "off"
        return {"used": used, "rule": f"{config.calibrate}, without validation rows"}, None
    scores = reference.answer_logprobs([text for text, _ in rows])
    truth = np.array([reference.labels.index(label) for _, label in rows])
    plain = round(float((scores.argmax(1) == truth).mean()), 4)
    prior = reference.content_free_prior()
    calibrated = round(float(((scores - prior).argmax(1) == truth).mean()), 4)
    used = config.calibrate == "on" or (config.calibrate == "auto" and calibrated > plain)
    record = {"used": used, "rule": config.calibrate, "rows": len(rows)}
    return {**record, "accuracy": plain, "calibrated_accuracy": calibrated}, (
        calibrated if used else plain
    )


def _gate(
    config: DecoderExportConfig,
    reference: Generator,
    work: Path,
    rows: list[Any],
    calibrated: bool,
    baseline: float | None,
) -> tuple[list[dict[str, Any]], Path]:
    """Each candidate from the requested width to fp32 until one passes: on the task's metric
    over a run's validation ``rows`` (label accuracy, or AUC for rank; ``baseline`` is fp32's)
    when there are any, else on agreement with fp32. A ``calibrated`` candidate's manifest
    carries its own label prior, and its accuracy is measured with it."""
    fp32_dir = reference.bundle.path
    probes = _probe_sequences(reference)
    metric = task_spec(config.task).metric
    table: list[dict[str, Any]] = []
    for weights in WIDER[config.weights]:
        folder = fp32_dir if weights == "fp32" else _quantized(config, fp32_dir, work, weights)
        candidate = Generator.load(folder)
        if calibrated:
            _store_prior(candidate)
        row = {"weights": weights, **_agreement(reference, candidate, probes)}
        if baseline is not None:
            value = baseline if weights == "fp32" else _measure(candidate, rows)
            row.update({metric: value, f"fp32_{metric}": baseline, "rows": len(rows)})
            passed = value >= baseline - config.max_accuracy_drop - 1e-9
        else:
            passed = row["agreement"] >= config.min_agreement
        row["size_bytes"] = sum(
            p.stat().st_size for p in folder.iterdir() if p.name.startswith("model.onnx")
        )
        row["kept"] = weights == "fp32" or passed
        table.append(row)
        if row["kept"]:
            return table, folder
    raise AccuracyGateError("no candidate passed the gate")  # fp32 always passes


def _store_prior(candidate: Generator) -> None:
    """The candidate's own label prior, used by it from now on and written to its manifest."""
    assert isinstance(candidate, GenerativeClassifier), "label priors calibrate classify bundles"
    candidate.prior = candidate.content_free_prior()
    manifest = candidate.bundle.manifest
    assert manifest.decoder is not None
    manifest.decoder["label_prior"] = [round(float(v), 6) for v in candidate.prior]
    write_manifest(candidate.bundle.path, manifest)


def _validation_rows(config: DecoderExportConfig) -> list[Any]:
    """The validation rows of the run ``config.run_dir``, if any (at most its validation limit
    and ``GATE_ROWS``, a seeded sample): (text, label) for classify, (request, yes) for rank."""
    if config.run_dir is None:
        return []
    import random

    from rec_edge.data.tasks import rank_rows, read_splits
    from rec_edge.train.runs import load_run

    run = load_run(config.run_dir)
    train_config = run.train_config()
    rows: list[Any]
    if task_spec(config.task).ranks:
        rows = [
            (
                RankRequest(r.preference.liked, r.preference.disliked, [r.candidate]),
                r.label == "yes",
            )
            for r in rank_rows(train_config)[1]["validation"]
        ]
    else:
        _, validation, _, _ = read_splits(train_config)
        rows = [(e.text, str(e.label)) for e in validation]
    limit = min(train_config.validation_limit or GATE_ROWS, GATE_ROWS)
    if len(rows) > limit:  # the run's own seeded sample where its limit is below GATE_ROWS
        rows = random.Random(train_config.seed).sample(rows, limit)
    return rows


def _measure(generator: Generator, rows: list[Any]) -> float:
    """Label accuracy (classify) or AUC of P(yes) (rank) of ``generator`` on ``rows``."""
    if isinstance(generator, GenerativeRanker):
        scores = [float(generator.rank_logits(r.history, r.candidates)[0]) for r, _ in rows]
        return round(roc_auc([int(yes) for _, yes in rows], scores), 4)
    assert isinstance(generator, GenerativeClassifier), "a run's rows judge classify or rank"
    predicted = generator.predict([text for text, _ in rows])
    hits = sum(p.label == label for p, (_, label) in zip(predicted, rows, strict=True))
    return round(hits / len(rows), 4)


def _quantized(config: DecoderExportConfig, fp32_dir: Path, work: Path, weights: str) -> Path:
    folder = work / weights
    folder.mkdir()
    quantize_weights(
        fp32_dir / "model.onnx",
        folder / "model.onnx",
        bits=4 if weights == "int4" else 8,
        block_size=config.block_size,
        accuracy_level=config.accuracy_level,
        symmetric=_symmetric(config, weights),
    )
    shutil.copy(fp32_dir / "tokenizer.json", folder / "tokenizer.json")
    manifest = Manifest.from_dict(json.loads((fp32_dir / "rec_edge.json").read_text("utf-8")))
    write_manifest(folder, manifest)
    return folder


def _symmetric(config: DecoderExportConfig, weights: str) -> bool:
    return config.symmetric if config.symmetric is not None else weights == "int8"


def _probe_sequences(reference: Generator) -> list[tuple[int, list[int]]]:
    """(prompt length, prompt + fp32's greedy answer) for each probe prompt."""
    greedy = GenerationConfig(max_new_tokens=PROBE_TOKENS)
    sequences = []
    for text in PROBE_PROMPTS:
        prompt = reference.prompt(text)
        ids = reference.encode(prompt)
        answer = reference.encode(reference.generate(prompt, greedy))
        sequences.append((len(ids), ids + answer))
    return sequences


def _agreement(
    reference: Generator, candidate: Generator, probes: list[tuple[int, list[int]]]
) -> dict[str, Any]:
    """At each answer position: does the candidate pick fp32's token? And the answers' mean
    negative log-likelihood under each graph (nats a token)."""
    same, total, nll, nll_ref = 0, 0, 0.0, 0.0
    for start, ids in probes:
        if len(ids) <= start:
            continue
        targets = np.array(ids[start:])
        positions = np.arange(start - 1, len(ids) - 1)
        mine = candidate.sequence_logits(ids)[positions]
        theirs = reference.sequence_logits(ids)[positions]
        same += int((mine.argmax(-1) == theirs.argmax(-1)).sum())
        total += len(targets)
        nll += _nll(mine, targets)
        nll_ref += _nll(theirs, targets)
    return {
        "agreement": round(same / max(total, 1), 4),
        "positions": total,
        "answer_nll": round(nll / max(total, 1), 4),
        "fp32_answer_nll": round(nll_ref / max(total, 1), 4),
    }


def _nll(logits: np.ndarray, targets: np.ndarray) -> float:
    logits = logits.astype(np.float64)
    shifted = logits - logits.max(-1, keepdims=True)
    logp = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    return float(-logp[np.arange(len(targets)), targets].sum())


def _assemble(
    config: DecoderExportConfig,
    kept: Path,
    staging: Path,
    gate: list[dict[str, Any]],
    parity: dict[str, Any],
    calibration: dict[str, Any],
) -> None:
    for path in kept.iterdir():
        if path.name != "rec_edge.json":
            shutil.copy(path, staging / path.name)
    manifest = Manifest.from_dict(json.loads((kept / "rec_edge.json").read_text("utf-8")))
    row = next(r for r in gate if r["kept"])
    manifest.recipe = {
        "weights": row["weights"],
        "format": "MatMulNBits" if row["weights"] != "fp32" else "float32",
        "block_size": config.block_size,
        "accuracy_level": config.accuracy_level,
        "symmetric": _symmetric(config, row["weights"]),
        "choice_rule": _choice_rule(config, gate),
        "calibration": calibration,
    }
    manifest.metrics = {"gate": gate}
    manifest.parity = parity
    _item_index(config, staging, manifest)
    manifest.source["config"] = config_to_dict(config)
    manifest.versions = versions()
    manifest.created = datetime.now(UTC).isoformat(timespec="seconds")
    write_manifest(staging, manifest)


def _item_index(config: DecoderExportConfig, staging: Path, manifest: Manifest) -> None:
    """A rank run's collaborative tables and stack (``collab.npz``, fitted over the decoder's
    score at training) as the bundle's item index, ``items.npz``: titles and tables, no vectors
    (a decoder reads each title itself), and the stage's record in the manifest's source."""
    from rec_edge.recommend.collab import COLLAB_FILE
    from rec_edge.train.runs import load_run

    if config.run_dir is None or not task_spec(config.task).ranks:
        return
    tables = Path(config.run_dir) / COLLAB_FILE
    if tables.is_file():
        shutil.copy(tables, staging / "items.npz")
        manifest.items_file = "items.npz"
        manifest.source["collaborative"] = load_run(config.run_dir).collaborative


def _instruction(config: DecoderExportConfig) -> str | None:
    """A classify bundle's instruction offers its label words (``{labels}``, or a sentence of
    its own when none is given); the other tasks' as given."""
    if not task_spec(config.task).labelled:
        return config.instruction
    return label_instruction(config.instruction, list(config.labels.values()))


def _choice_rule(config: DecoderExportConfig, gate: list[dict[str, Any]]) -> str:
    if "rows" in gate[0]:
        metric = task_spec(config.task).metric_name
        return (
            f"the narrowest weights whose {metric} on {gate[0]['rows']} validation rows "
            f"is at most {config.max_accuracy_drop} below fp32's"
        )
    return (
        f"the narrowest weights whose greedy agreement with fp32 is at least {config.min_agreement}"
    )
