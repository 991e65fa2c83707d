"""`export`: a training run -> a checked, self-describing bundle, written atomically."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rec_edge.bundle import Manifest, write_manifest
from rec_edge.config import ExportConfig, config_to_dict
from rec_edge.convert.head_graph import append_head
from rec_edge.convert.onnx_export import export_onnx, parity, torch_logits
from rec_edge.convert.optimize import optimize_graph
from rec_edge.convert.quantize import Recipe, get_recipe
from rec_edge.data.readers import Example, read_examples
from rec_edge.data.tasks import read_splits
from rec_edge.errors import (
    AccuracyGateError,
    ConfigError,
    DataError,
    ExportError,
    RunError,
)
from rec_edge.export.card import model_card
from rec_edge.export.folders import check_target, replace_folder, scratch_folders
from rec_edge.export.gate import Candidate, Evaluator, Gate
from rec_edge.export.merge import model_to_export
from rec_edge.metrics import PER_TEXT
from rec_edge.modeling.heads import HEAD_FILE, HEAD_KIND, LabelHead, extend_head
from rec_edge.recommend.items import item_index
from rec_edge.runtime.tokenize import BundleTokenizer, pad_batch
from rec_edge.tasks import task_spec
from rec_edge.train.runs import RunRecord, load_run
from rec_edge.versions import versions


@dataclass
class ExportResult:
    bundle_dir: Path
    recipe: dict[str, Any]
    metrics: dict[str, Any]  # fp32 and chosen: the gate's metric and others, ms_per_item, size_mb
    gate: list[dict[str, Any]]  # one row per recipe tried
    parity: dict[str, Any]


def _run_data(run: RunRecord) -> tuple[list[Example], list[Example], str | None]:
    """The run's (train, validation) examples, read once; or the reason they cannot be read."""
    try:
        train, validation, _, _ = read_splits(run.train_config())
    except DataError as error:
        return [], [], str(error)
    return train, validation, None


def _eval_examples(
    config: ExportConfig,
    run: RunRecord,
    validation: list[Example],
    problem: str | None,
    labels: list[str],
) -> tuple[list[Example], str]:
    train_config = run.train_config()
    if config.eval_file and task_spec(train_config.task).ranks:
        raise ConfigError(
            "--eval-file is for classify runs; a rank run is evaluated on its own time-split "
            "validation pairs (drop --eval-file)."
        )
    if config.eval_file:
        examples = read_examples(
            config.eval_file, train_config.text_field, train_config.label_field, None, None
        ).examples
        source = config.eval_file
    else:
        if problem:
            raise ExportError(
                f"The run's validation data cannot be read again ({problem}). Pass --eval-file."
            )
        examples = validation
        kind = task_spec(train_config.task).validation
        source = train_config.validation_file or f"{train_config.train_file} (the run's {kind})"
    unknown = sorted({str(e.label) for e in examples} - set(labels))
    if unknown:
        raise DataError(
            f"{source}: labels {unknown} are not among the bundle's {len(labels)} labels "
            "(add a described label with --add-label NAME=DESCRIPTION)"
        )
    return examples[: config.eval_limit] if config.eval_limit else examples, source


def _calibration(
    texts: list[str], tokenizer: BundleTokenizer, render: Any, input_names: list[str]
) -> list[dict[str, Any]]:
    """Padded feeds of the calibration texts, 16 at a time."""
    encodings = tokenizer.encode(render(texts))
    feeds = []
    for start in range(0, len(encodings), 16):
        batch = pad_batch(encodings[start : start + 16], tokenizer.pad_id)
        feeds.append({name: batch[name] for name in input_names})
    return feeds


def _check_recipe(recipe: Recipe, config: ExportConfig) -> None:
    if not recipe.batch_invariant and not config.allow_batch_variance:
        raise ConfigError(
            f"--quantize {recipe.name} scales activations over the whole batch at run time: a "
            "text's scores would depend on what it is batched with. Pass --allow-batch-variance "
            f"to accept that, or use --quantize calibrated{recipe.name.removeprefix('dynamic')} "
            "(the same kernels with calibrated scales)."
        )


@dataclass
class _GateData:
    """The labelled texts the gate scores candidates on, and the calibration texts."""

    texts: list[str]
    label_ids: list[int]
    candidates: list[str] | None  # rank: the item paired with each text
    source: str  # where the texts come from, for messages and the manifest
    calibration_texts: list[str]


def _gate_data(config: ExportConfig, run: RunRecord, labels: list[str]) -> _GateData:
    train_examples, validation, problem = _run_data(run)
    examples, source = _eval_examples(config, run, validation, problem, labels)
    index = {label: i for i, label in enumerate(labels)}
    rank = task_spec(run.task).ranks  # texts are the users' side; each pairs with its candidate
    # a sample of the training texts; the evaluation texts if the training data is gone
    calibration = train_examples[: config.calibration_size] or examples[: config.calibration_size]
    calibration_texts = [e.text for e in calibration]
    if rank:  # both towers' inputs: user texts and item texts
        calibration_texts += [e.candidate or "" for e in calibration]
    return _GateData(
        [e.text for e in examples],
        [index[str(e.label)] for e in examples],
        [e.candidate or "" for e in examples] if rank else None,
        source,
        calibration_texts,
    )


@dataclass
class _Graphs:
    unfused: Path  # optimum's export (static QDQ quantizes this one)
    fused: Path  # with the portable fusions: what the other recipes quantize
    fusions: dict[str, Any]
    model_config: Any  # transformers' config of the exported model


def _tokenizer_file(model_dir: Path, max_length: int) -> Path:
    path = model_dir / "tokenizer.json"
    if not path.is_file():
        raise RunError(
            f"{path} is missing: the runtime needs a fast tokenizer's tokenizer.json. Re-run training."
        )
    BundleTokenizer(path, max_length)  # fails early on a corrupt file
    return path


def _onnx_graphs(
    model_dir: Path, work: Path, config: ExportConfig, log: Any, head: LabelHead | None
) -> _Graphs:
    from transformers import AutoConfig

    model_config = AutoConfig.from_pretrained(model_dir)
    task = "feature-extraction" if head else "text-classification"
    log(f"exporting {model_dir} to ONNX (optimum, {task})")
    unfused = export_onnx(model_dir, work / "onnx", task)
    if head is not None:
        append_head(unfused, head)
        log(f"description head appended: {len(head.labels)} labels")
    fused = work / "fused.onnx"
    fusions: dict[str, Any] = {}
    if config.optimize == "portable":
        fusions = optimize_graph(
            unfused,
            fused,
            model_config.model_type,
            getattr(model_config, "num_attention_heads", 0),
            getattr(model_config, "hidden_size", 0),
        )
        log(f"fused: {fusions or 'nothing'}")
    else:
        shutil.copy(unfused, fused)
    return _Graphs(unfused, fused, fusions, model_config)


def _label_head(
    run: RunRecord, run_dir: Path, model_dir: Path, config: ExportConfig, log: Any
) -> LabelHead | None:
    """A description run's head (modeling.heads), with the --add-label rows embedded by the
    trained encoder; None for a linear or two-tower head."""
    if run.head.get("kind") != HEAD_KIND:
        return None
    head = LabelHead.load(run_dir / run.head.get("file", HEAD_FILE))
    if not config.add_labels:
        return head
    from transformers import AutoModel, AutoTokenizer

    encoder = AutoModel.from_pretrained(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    head = extend_head(head, encoder, tokenizer, config.add_labels, run.max_length)
    log(f"labels added without training: {', '.join(config.add_labels)}")
    return head


def _bundle_labels(run: RunRecord, config: ExportConfig) -> list[str]:
    """The run's labels and the --add-label ones (a description run's only)."""
    if not config.add_labels:
        return list(run.labels)
    if run.head.get("kind") != HEAD_KIND:
        raise ConfigError(
            f"--add-label needs a run trained with the description head (--head descriptions); "
            f"{run.name} has a {run.head.get('kind', 'labels')!r} head."
        )
    clash = sorted(set(config.add_labels) & set(run.labels))
    if clash:
        raise ConfigError(f"--add-label {clash}: already labels of the run {run.name}.")
    return list(run.labels) + list(config.add_labels)


def _new_manifest(run: RunRecord, graph_path: Path, labels: list[str]) -> Manifest:
    import onnx

    graph = onnx.load(str(graph_path), load_external_data=False).graph
    return Manifest(
        task=run.task,
        labels=labels,
        templates=run.templates,
        max_length=run.max_length,
        inputs=[i.name for i in graph.input],
        outputs=[o.name for o in graph.output],
    )


def _evaluate_fp32(evaluator: Evaluator, fused: Path, data: _GateData, log: Any) -> Candidate:
    folder = evaluator.work / "fp32"
    folder.mkdir(parents=True)
    shutil.copy(fused, folder / "model.onnx")
    fp32 = evaluator.evaluate(get_recipe("fp32"), folder / "model.onnx")
    n = len(data.texts)
    log(f"fp32: {fp32.metric} {fp32.score:.4f} on {n} examples of {data.source}")
    if n < 1000:
        log(
            f"note: with {n} evaluation examples one example is {100 / n:.2f} points; "
            "the gate's decisions are that coarse (pass --eval-file with more labelled data)"
        )
    return fp32


def _check_parity(
    model_dir: Path,
    predictor: Any,
    texts: list[str],
    max_length: int,
    atol: float,
    log: Any,
    head: LabelHead | None,
) -> dict[str, Any]:
    """The fp32 graph against PyTorch on the first 64 evaluation texts; ExportError past atol."""
    sample = texts[:64]
    figures = parity(
        torch_logits(model_dir, predictor.render(sample), max_length, head=head),
        predictor.logits(sample),
    )
    figures["atol"] = atol
    log(f"parity with PyTorch: max |diff| {figures['max_abs_diff']:.2e} (atol {atol:g})")
    if figures["max_abs_diff"] > atol:
        raise ExportError(
            f"The fp32 ONNX graph differs from PyTorch by {figures['max_abs_diff']:.2e} "
            f"(> atol {atol:g}) on {len(sample)} validation texts. Try --optimize none; "
            "if that passes, the fusions are at fault for this model."
        )
    return figures


def _choose(gate: Gate, config: ExportConfig, log: Any) -> Candidate:
    """The gate's choice (``auto``), or the named recipe if it passes; fp32 with --fallback fp32
    when nothing passes; else an AccuracyGateError with the gate's table."""
    chosen: Candidate | None = gate.fp32
    if config.quantize == "auto":
        log(f"accuracy gate (max drop {config.max_accuracy_drop} pts):")
        chosen = gate.run()
    elif get_recipe(config.quantize).kind != "fp32":
        candidate = gate.attempt(get_recipe(config.quantize))
        chosen = candidate if candidate.passed else None
    if chosen is not None:
        return chosen
    if config.fallback != "fp32":
        lines = "\n".join(
            f"  {r['recipe']:<28} {r['metric']} {r[r['metric']]:.4f} drop {r['drop_points']:+.2f} pts"
            f" (allowed {r['allowed_drop']:.2f}) shift {r['fp32_shift']:.3f}"
            f" batch variance {r['batch_variance']:.1e}"
            for r in (c.row() for c in gate.tried)
        )
        raise AccuracyGateError(
            f"No quantization recipe stayed within its allowed drop ({config.max_accuracy_drop} "
            f"{gate.fp32.metric} points of fp32, plus the noise of the gate's texts for accuracy) "
            f"with batch-invariant scores:\n{lines}\n"
            "Raise --max-accuracy-drop, pass --allow-batch-variance if batch-variant scores are "
            "acceptable, or --fallback fp32 to ship the fp32 model."
        )
    log("no recipe passed the gate: keeping fp32 (--fallback fp32)")
    return gate.fp32


def _run_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    """The run's reports for the manifest, without the per-text entries (run.json keeps them)."""
    return {
        split: {k: v for k, v in report.items() if k not in PER_TEXT}
        if isinstance(report, dict)
        else report
        for split, report in metrics.items()
    }


def _describe(
    manifest: Manifest,
    config: ExportConfig,
    run: RunRecord,
    run_dir: Path,
    merged: bool,
    graphs: _Graphs,
    gate: Gate,
    chosen: Candidate,
    data: _GateData,
    parity_figures: dict[str, Any],
    head: LabelHead | None,
) -> None:
    """Fill the manifest: recipe and choice, source, metrics and the gate's table, parity."""
    manifest.recipe = {
        **chosen.recipe.to_dict(),
        "optimize": config.optimize,
        "fusions": graphs.fusions,
        "max_accuracy_drop": config.max_accuracy_drop,
        "batch_invariant": chosen.batch_invariant,
        "batch_variance": chosen.row()["batch_variance"],
        "choice_rule": gate.rule,
    }
    dims = ("hidden_size", "num_hidden_layers", "intermediate_size", "num_attention_heads")
    manifest.source = {
        "run": str(run_dir.resolve()),
        "run_name": run.name,
        "model": run.source_model,
        "model_type": graphs.model_config.model_type,
        "merged_at_export": merged,  # the run held only a LoRA adapter
        "head": head.to_dict() if head else run.head or {"kind": "labels"},
        "added_labels": dict(config.add_labels),
        "collaborative": run.collaborative if manifest.items_file else None,
        "run_metrics": _run_metrics(run.metrics),
        "export_config": config_to_dict(config),
        "dims": {k: getattr(graphs.model_config, k, None) for k in (*dims, "vocab_size")},
    }
    manifest.metrics = {
        "eval_source": data.source,
        "eval_n": len(data.texts),
        "fp32": _summary(gate.fp32),
        "chosen": _summary(chosen),
        "gate": [c.row() for c in gate.tried],
        "sensitivity": [{"node": n, "mse": e} for n, e in gate.ranking],
    }
    manifest.parity = parity_figures
    manifest.versions = versions()
    manifest.created = datetime.now(UTC).isoformat(timespec="seconds")


def export(config: ExportConfig, log: Any = print) -> ExportResult:
    """A finished run -> ``config.out``: ONNX, fusions, the gate's int8 recipe, the manifest.

    Written in a staging folder beside ``out`` and renamed into place when complete."""
    run_dir = Path(config.run_dir)
    run = load_run(run_dir)
    out = Path(config.out or Path("exports") / run.name)
    check_target(out, config.force, [run_dir])
    if config.quantize != "auto":
        _check_recipe(get_recipe(config.quantize), config)
    labels = _bundle_labels(run, config)
    data = _gate_data(config, run, labels)
    out.parent.mkdir(parents=True, exist_ok=True)
    work, staging = scratch_folders(out)
    try:
        model_dir = model_to_export(run_dir, run, work)  # merges the adapter if needed
        tokenizer_file = _tokenizer_file(model_dir, run.max_length)
        head = _label_head(run, run_dir, model_dir, config, log)
        graphs = _onnx_graphs(model_dir, work, config, log, head)
        manifest = _new_manifest(run, graphs.fused, labels)
        evaluator = Evaluator(
            work / "candidates",
            manifest,
            tokenizer_file,
            data.texts,
            data.label_ids,
            data.candidates,
        )
        fp32 = _evaluate_fp32(evaluator, graphs.fused, data, log)
        predictor = evaluator.predictor(fp32.path)
        parity_figures = _check_parity(
            model_dir, predictor, data.texts, run.max_length, config.parity_atol, log, head
        )
        tokenizer = BundleTokenizer(tokenizer_file, run.max_length)
        calibration = _calibration(
            data.calibration_texts, tokenizer, predictor.render, manifest.inputs
        )
        gate = Gate(
            evaluator,
            graphs.fused,
            graphs.unfused,
            fp32,
            config.max_accuracy_drop,
            calibration,
            log,
            config.allow_batch_variance,
        )
        chosen = _choose(gate, config, log)

        shutil.copy(chosen.path, staging / "model.onnx")
        shutil.copy(tokenizer_file, staging / "tokenizer.json")
        if task_spec(run.task).ranks:
            manifest.items_file = item_index(
                run, run_dir, evaluator.predictor(chosen.path), staging, log
            )
        if config.keep_fp32 and chosen is not fp32:
            shutil.copy(fp32.path, staging / "model_fp32.onnx")
        merged = model_dir.parent == work
        _describe(
            manifest, config, run, run_dir, merged, graphs, gate, chosen, data, parity_figures, head
        )
        (staging / "README.md").write_text(model_card(manifest), encoding="utf-8")
        write_manifest(staging, manifest)
        check_target(out, config.force, [run_dir])
        replace_folder(staging, out)
        log(f"bundle written to {out} ({chosen.recipe.name}, {chosen.size_bytes / 1e6:.1f} MB)")
        return ExportResult(
            out,
            manifest.recipe,
            {"fp32": manifest.metrics["fp32"], "chosen": manifest.metrics["chosen"]},
            manifest.metrics["gate"],
            parity_figures,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(staging, ignore_errors=True)


def _summary(candidate: Candidate) -> dict[str, Any]:
    row = candidate.row()
    keep = ("recipe", "metric", *candidate.metrics, "drop_points", "allowed_drop", "fp32_shift")
    keep += ("fp32_label_changes", "ms_per_item", "size_mb")
    return {k: row[k] for k in keep}
