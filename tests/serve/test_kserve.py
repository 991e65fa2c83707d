"""KServe's Open Inference Protocol (v2 REST) in `rec-edge serve`: Triton's own client
(tritonclient.http) against a real server on a loopback port, over an encoder and a decoder
classify bundle: the health and metadata calls, and infer answers equal to Predictor.predict's."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from rec_edge.runtime import Predictor, load
from tests.helpers import LiveServer, live_server, make_examples

TEXTS = [r["text"] for r in make_examples(4, seed=13)]


@pytest.fixture(scope="module")
def live(
    tiny_bundle: Path,
    rank_bundle: Path,
    decoder_bundle: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LiveServer]:
    names = [f"topics={tiny_bundle}", f"movies={rank_bundle}", f"reviews={decoder_bundle}"]
    args = [x for name in names for x in ("--bundle", name)]
    with live_server(args, tmp_path_factory.mktemp("kserve") / "log") as server:
        yield server


@pytest.fixture(scope="module")
def client(live: LiveServer) -> httpclient.InferenceServerClient:
    return httpclient.InferenceServerClient(live.url.removeprefix("http://"))


def infer(client: httpclient.InferenceServerClient, model: str, texts: list[str]):  # type: ignore[no-untyped-def]
    tensor = httpclient.InferInput("text", [len(texts)], "BYTES")
    tensor.set_data_from_numpy(np.array(texts, dtype=object), binary_data=False)
    wanted = [httpclient.InferRequestedOutput(n, binary_data=False) for n in ("label", "scores")]
    return client.infer(model, [tensor], outputs=wanted, request_id="r1")


def test_health_and_metadata(client: httpclient.InferenceServerClient, tiny_bundle: Path) -> None:
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("topics")
    metadata = client.get_model_metadata("topics")
    assert metadata["inputs"] == [{"name": "text", "datatype": "BYTES", "shape": [-1]}]
    labels = Predictor.load(tiny_bundle).labels
    assert metadata["parameters"]["labels"] == labels
    assert {o["name"] for o in metadata["outputs"]} == {"label", "score", "scores"}
    assert client.get_server_metadata()["name"] == "rec-edge"
    with pytest.raises(InferenceServerException, match="no model 'nope'"):
        client.get_model_metadata("nope")


@pytest.mark.parametrize("name", ["topics", "reviews"])
def test_infer_answers_as_the_predictor(
    client: httpclient.InferenceServerClient, name: str, tiny_bundle: Path, decoder_bundle: Path
) -> None:
    bundle = {"topics": tiny_bundle, "reviews": decoder_bundle}[name]
    predictor = load(bundle)
    result = infer(client, name, TEXTS)
    labels = [x.decode() if isinstance(x, bytes) else x for x in result.as_numpy("label")]
    assert labels == [p.label for p in predictor.predict(TEXTS)]
    scores = result.as_numpy("scores")
    assert scores.shape == (len(TEXTS), len(predictor.labels)) and scores.dtype == np.float32
    assert np.array_equal(scores, predictor.predict_proba(TEXTS))
    assert result.get_response()["id"] == "r1"


def test_infer_refusals_are_v2_errors(client: httpclient.InferenceServerClient) -> None:
    with pytest.raises(InferenceServerException, match="v2 infer serves classify bundles"):
        infer(client, "movies", TEXTS)
    tensor = httpclient.InferInput("text", [1], "BYTES")
    tensor.set_data_from_numpy(np.array(["x"], dtype=object), binary_data=True)
    with pytest.raises(InferenceServerException, match="binary tensor data is not supported"):
        client.infer("topics", [tensor])
    wrong = httpclient.InferInput("words", [1], "BYTES")
    wrong.set_data_from_numpy(np.array(["x"], dtype=object), binary_data=False)
    with pytest.raises(InferenceServerException, match="one input named 'text'"):
        client.infer("topics", [wrong])
