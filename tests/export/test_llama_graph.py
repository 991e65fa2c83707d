"""The fused decoder graph (convert.llama_graph) on tiny random Llamas: what it writes, exactly
PyTorch's logits over a prompt and over a cache grown a chunk at a time with right padding, and
the models it leaves to optimum."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


def tiny(**overrides: object):  # type: ignore[no-untyped-def]
    settings: dict[str, object] = {
        "vocab_size": 97,
        "hidden_size": 64,
        "intermediate_size": 48,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 64,
        "tie_word_embeddings": True,
    }
    config = transformers.LlamaConfig(**(settings | overrides))
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return transformers.LlamaForCausalLM(config).eval()


def session(model):  # type: ignore[no-untyped-def]
    import onnxruntime as ort

    from rec_edge.convert.llama_graph import build_llama_graph

    graph = build_llama_graph(model)
    return graph, ort.InferenceSession(
        graph.SerializeToString(), providers=["CPUExecutionProvider"]
    )


def run(sess, ids: np.ndarray, mask: np.ndarray, past: list[np.ndarray]):  # type: ignore[no-untyped-def]
    feeds = {"input_ids": ids, "attention_mask": mask}
    feeds.update(
        {f"past_key_values.{i // 2}.{('key', 'value')[i % 2]}": p for i, p in enumerate(past)}
    )
    logits, *present = sess.run(None, feeds)
    return logits, present


def empty(batch: int) -> list[np.ndarray]:
    return [np.zeros((batch, 2, 0, 16), np.float32) for _ in range(4)]


def test_the_graph_is_fused_operators_and_pytorchs_logits() -> None:
    model = tiny()
    graph, sess = session(model)
    ops = Counter(n.op_type for n in graph.graph.node)
    assert ops["GroupQueryAttention"] == 2 and ops["MatMul"] == 9 and len(graph.graph.node) < 60
    assert [o.name for o in graph.graph.output][0] == "logits"
    ids = np.array([[5, 17, 3, 44, 9, 60, 2]])
    with torch.no_grad():
        expected = model(torch.tensor(ids)).logits.numpy()
    logits, present = run(sess, ids, np.ones_like(ids), empty(1))
    np.testing.assert_allclose(logits, expected, atol=1e-4)
    assert present[0].shape == (1, 2, 7, 16)
    # the same prompt in two chunks over the cache: the same logits for the second chunk
    head, cache = run(sess, ids[:, :4], np.ones((1, 4), np.int64), empty(1))
    tail, _ = run(sess, ids[:, 4:], np.ones((1, 7), np.int64), cache)
    np.testing.assert_allclose(tail, expected[:, 4:], atol=1e-4)


def test_right_padding_never_enters_the_cache() -> None:
    """Two prompts of different lengths in one batch, then a token each: every row's logits are
    the row's alone (its pads are neither attended to nor counted as positions)."""
    model = tiny()
    _, sess = session(model)
    short, long = [7, 8, 9], [11, 12, 13, 14, 15]
    ids = np.array([short + [0, 0], long])
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    logits, cache = run(sess, ids, mask, empty(2))
    step, _ = run(sess, np.array([[21], [22]]), np.concatenate([mask, [[1], [1]]], 1), cache)
    for row, (prompt, token) in enumerate(((short, 21), (long, 22))):
        with torch.no_grad():
            alone = model(torch.tensor([prompt + [token]])).logits.numpy()[0]
        np.testing.assert_allclose(logits[row, : len(prompt)], alone[:-1], atol=1e-4)
        np.testing.assert_allclose(step[row, 0], alone[-1], atol=1e-4)


def test_models_the_builder_does_not_describe_go_to_optimum() -> None:
    from rec_edge.convert.llama_graph import supports

    assert supports(tiny()) is None
    assert "biases" in str(supports(tiny(attention_bias=True)))
    assert "activation" in str(supports(tiny(hidden_act="gelu")))
    assert "multiple of 16" in str(supports(tiny(hidden_size=32)))
    linear = {"rope_type": "linear", "factor": 2.0}
    assert supports(tiny(rope_scaling=linear)) is None  # the inverse frequencies carry it
    dynamic = {"rope_type": "dynamic", "factor": 2.0}
    assert "rotary" in str(supports(tiny(rope_scaling=dynamic)))  # they change with the length
