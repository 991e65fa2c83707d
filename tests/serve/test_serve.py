"""`rec-edge serve` against a real server on a loopback port: answers equal the Predictor's on
each request alone however requests were batched, every endpoint, every bad input, overload,
timeouts, auth, reload and the SIGTERM drain."""

from __future__ import annotations

import asyncio
import json
import random
import re
import shutil
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest

from rec_edge.bundle import load_bundle
from rec_edge.runtime import Predictor
from rec_edge.serve.models import SESSION_BATCHES
from tests.helpers import LiveServer, live_server, make_examples

pytestmark = pytest.mark.slow
TEXTS = [r["text"] for r in make_examples(12, seed=5)]
TITLES = [f"Movie {i}" for i in range(40)]


def _metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text format (0 if absent)."""
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            found = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0]))
            if all(found.get(k) == v for k, v in labels.items()):
                return float(line.rsplit(" ", 1)[1])
    return 0.0


async def _post_all(server: LiveServer, path: str, bodies: list[dict]) -> list[httpx.Response]:  # type: ignore[type-arg]
    async with server.async_client() as client:
        return await asyncio.gather(*(client.post(path, json=b) for b in bodies))


def test_predict_answers_are_the_predictors_on_each_request_alone(
    server: LiveServer, tiny_bundle: Path
) -> None:
    rng = random.Random(0)
    bodies = [
        {"texts": rng.sample(TEXTS, rng.randint(1, 5)), **({"top_k": 2} if i % 3 == 0 else {})}
        for i in range(60)
    ]
    with server.client() as client:
        runs_before = _metric(
            client.get("/metrics").text, "rec_edge_batch_items_count", model="topics"
        )
    responses = asyncio.run(_post_all(server, "/v1/models/topics/predict", bodies))
    predictor = Predictor.load(tiny_bundle)
    for body, response in zip(bodies, responses, strict=True):
        assert response.status_code == 200, response.text
        alone = predictor.predict(body["texts"])
        got = response.json()["predictions"]
        assert [g["label"] for g in got] == [p.label for p in alone]
        assert [g["score"] for g in got] == [p.score for p in alone]  # bit for bit
        if "top_k" in body:
            for g, p in zip(got, alone, strict=True):
                best = sorted(p.scores.items(), key=lambda kv: -kv[1])[:2]
                assert [(t["label"], t["score"]) for t in g["top"]] == best
    with server.client() as client:
        metrics = client.get("/metrics").text
    runs = _metric(metrics, "rec_edge_batch_items_count", model="topics") - runs_before
    assert 0 < runs < len(bodies)  # concurrent requests shared session runs
    assert _metric(metrics, "rec_edge_requests_total", model="topics", status="200") >= 60


def test_rank_answers_are_the_predictors_on_each_request_alone(
    server: LiveServer, rank_bundle: Path
) -> None:
    rng = random.Random(1)
    bodies = []
    for i in range(30):
        history = rng.sample(TITLES, 5)
        candidates = rng.sample(TITLES, rng.randint(1, 12)) + [f"A new film {i}"]
        bodies.append(
            {"liked": history[:3], "disliked": history[3:], "candidates": candidates, "k": 5}
        )
    responses = asyncio.run(_post_all(server, "/v1/models/movies/rank", bodies))
    predictor = Predictor.load(rank_bundle)
    for body, response in zip(bodies, responses, strict=True):
        assert response.status_code == 200, response.text
        alone = predictor.rank(
            {"liked": body["liked"], "disliked": body["disliked"]}, body["candidates"], k=5
        )
        assert response.json()["items"] == [
            {"item": r.item, "score": r.score, "enjoy": r.enjoy} for r in alone
        ]


def test_models_health_ready_metrics_openapi(server: LiveServer, tiny_bundle: Path) -> None:
    with server.client() as client:
        models = {m["name"]: m for m in client.get("/v1/models").json()["models"]}
        manifest = load_bundle(tiny_bundle).manifest
        assert models["topics"]["task"] == "classify" and models["movies"]["task"] == "rank"
        assert models["topics"]["labels"] == manifest.labels
        assert models["topics"]["model_sha256"] == manifest.files[manifest.model_file]
        assert models["topics"]["recipe"] == manifest.recipe
        assert models["movies"]["endpoint"] == "/v1/models/movies/rank"
        assert models["topics"]["session_batch"] in SESSION_BATCHES  # measured at load
        assert models["movies"]["session_batch"] in SESSION_BATCHES
        assert client.get("/healthz").json() == {"status": "alive"}
        assert client.get("/readyz").json()["models"] == ["topics", "movies"]
        schema = client.get("/openapi.json").json()
        assert schema["openapi"].startswith("3.")
        assert "post" in schema["paths"]["/v1/models/{name}/predict"]
        metrics = client.get("/metrics")
        assert metrics.headers["content-type"].startswith("text/plain")
        for name in (
            "rec_edge_requests_total",
            "rec_edge_request_seconds_bucket",
            "rec_edge_batch_items_bucket",
            "rec_edge_queue_items",
            "rec_edge_items_per_second",
            "rec_edge_items_total",
        ):
            assert name in metrics.text, name
    lines = [
        json.loads(line) for line in server.log.read_text().splitlines() if line.startswith("{")
    ]
    assert {"method", "path", "status", "ms", "client"} <= set(lines[-1])


BAD = [
    # (path, raw body, status, code, field)
    ("/v1/models/topics/predict", b"{not json", 400, "malformed_json", None),
    ("/v1/models/topics/predict", b"[" * 60_000 + b"]" * 60_000, 400, "malformed_json", None),
    ("/v1/models/topics/predict", b"[1, 2]", 422, "invalid_request", None),
    ("/v1/models/topics/predict", b'{"text": ["a"]}', 422, "invalid_request", "text"),
    ("/v1/models/topics/predict", b'{"texts": "a"}', 422, "invalid_request", "texts"),
    ("/v1/models/topics/predict", b'{"texts": []}', 422, "invalid_request", "texts"),
    ("/v1/models/topics/predict", b'{"texts": ["a", 3]}', 422, "invalid_request", "texts[1]"),
    ("/v1/models/topics/predict", b'{"texts": ["a"], "top_k": 0}', 422, "invalid_request", "top_k"),
    (
        "/v1/models/topics/predict",
        json.dumps({"texts": ["a"] * 17}).encode(),
        413,
        "too_large",
        "texts",
    ),
    (
        "/v1/models/topics/predict",
        json.dumps({"texts": ["a" * 10_001]}).encode(),
        413,
        "too_large",
        "texts[0]",
    ),
    ("/v1/models/nobody/predict", b'{"texts": ["a"]}', 404, "unknown_model", None),
    ("/v1/models/topics/rank", b'{"candidates": ["a"]}', 400, "wrong_task", None),
    ("/v1/models/movies/predict", b'{"texts": ["a"]}', 400, "wrong_task", None),
    ("/v1/models/movies/rank", b'{"liked": ["a"]}', 422, "invalid_request", None),
    ("/v1/models/movies/rank", b'{"candidates": ["a"], "k": "5"}', 422, "invalid_request", "k"),
    ("/v1/models/movies/rank", b'{"candidates": [1]}', 422, "invalid_request", "candidates"),
    ("/nowhere", b"", 404, "not_found", None),
]


def test_a_wrong_method_is_a_405_that_says_what_is_allowed(server: LiveServer) -> None:
    with server.client() as client:
        response = client.get("/v1/models/topics/predict")
        assert response.status_code == 405 and response.headers["allow"] == "POST"
        assert response.json()["error"]["code"] == "method_not_allowed"
        assert set(client.delete("/v1/models").headers["allow"].split(", ")) == {"GET", "HEAD"}


@pytest.mark.parametrize(("path", "body", "status", "code", "field"), BAD)
def test_bad_requests_get_a_json_error_naming_the_field(
    server: LiveServer, path: str, body: bytes, status: int, code: str, field: str | None
) -> None:
    with server.client() as client:
        response = client.post(path, content=body, headers={"content-type": "application/json"})
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and error["status"] == status
    if field is not None:
        assert field in [p["field"] for p in error["problems"]], error
    assert "Traceback" not in response.text


def test_wrong_method_and_body_limit(tiny_bundle: Path, tmp_path: Path) -> None:
    with (
        live_server([str(tiny_bundle), "--max-body-bytes", "100"], tmp_path / "log") as live,
        live.client() as client,
    ):
        name = tiny_bundle.name
        assert (
            client.get(f"/v1/models/{name}/predict").json()["error"]["code"] == "method_not_allowed"
        )
        big = client.post(f"/v1/models/{name}/predict", json={"texts": ["word " * 30]})
        assert big.status_code == 413 and big.json()["error"]["problems"][0]["field"] == "body"
        assert client.post(f"/v1/models/{name}/predict", json={"texts": ["ok"]}).status_code == 200


def test_overload_is_shed_with_503_and_service_resumes(tiny_bundle: Path, tmp_path: Path) -> None:
    args = [str(tiny_bundle), "--max-queue", "16", "--max-batch", "16", "--max-texts", "16"]
    name = tiny_bundle.name
    with live_server(args, tmp_path / "log") as live:
        bodies = [{"texts": random.Random(i).sample(TEXTS, 16)} for i in range(150)]
        responses = asyncio.run(_post_all(live, f"/v1/models/{name}/predict", bodies))
        statuses = [r.status_code for r in responses]
        assert set(statuses) <= {200, 503}, statuses
        shed = [r for r in responses if r.status_code == 503]
        assert shed and all(r.headers["retry-after"] == "1" for r in shed)
        assert all(r.json()["error"]["code"] == "overloaded" for r in shed)
        assert statuses.count(200) >= 1
        predictor = Predictor.load(tiny_bundle)
        for body, response in zip(bodies, responses, strict=True):
            if response.status_code == 200:
                assert [p["score"] for p in response.json()["predictions"]] == [
                    p.score for p in predictor.predict(body["texts"])
                ]
        with live.client() as client:  # the burst is over: normal service
            assert (
                client.post(f"/v1/models/{name}/predict", json={"texts": ["a"]}).status_code == 200
            )


def test_a_request_past_its_timeout_gets_504(tiny_bundle: Path, tmp_path: Path) -> None:
    args = [str(tiny_bundle), "--timeout-s", "0.0001", "--max-texts", "64"]
    with live_server(args, tmp_path / "log") as live, live.client() as client:
        response = client.post(
            f"/v1/models/{tiny_bundle.name}/predict", json={"texts": TEXTS[:36] * 1}
        )
        assert response.status_code == 504
        assert response.json()["error"]["code"] == "timeout"


def test_api_key_auth(tiny_bundle: Path, tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.write_text("# rotate monthly\nfirst-secret\n\nsecond-secret\n")
    predict = f"/v1/models/{tiny_bundle.name}/predict"
    with (
        live_server([str(tiny_bundle), "--api-key-file", str(keys)], tmp_path / "log") as live,
        live.client() as client,
    ):
        assert client.get("/healthz").status_code == 200  # probes stay open
        assert client.get("/readyz").status_code == 200
        for headers in (
            {},
            {"Authorization": "Bearer wrong"},
            {"Authorization": "Basic first-secret"},
        ):
            response = client.post(predict, json={"texts": ["a"]}, headers=headers)
            assert response.status_code == 401, headers
            assert response.headers["www-authenticate"] == "Bearer"
            assert response.json()["error"]["code"] == "unauthorized"
        assert client.get("/metrics").status_code == 401
        for key in ("first-secret", "second-secret"):
            ok = client.post(
                predict, json={"texts": ["a"]}, headers={"Authorization": f"Bearer {key}"}
            )
            assert ok.status_code == 200


def test_reload_swaps_a_good_bundle_and_refuses_a_bad_one(
    tiny_bundle: Path,
    tiny_run,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    from rec_edge.config import ExportConfig
    from rec_edge.export import export

    fp32 = export(
        ExportConfig(run_dir=str(tiny_run.run_dir), out=str(tmp_path / "fp32"), quantize="fp32"),
        log=lambda _: None,
    ).bundle_dir
    served = tmp_path / "topics"
    shutil.copytree(tiny_bundle, served)
    sha = {p: load_bundle(p).manifest.files["model.onnx"] for p in (tiny_bundle, fp32)}
    assert sha[tiny_bundle] != sha[fp32]
    with live_server([str(served)], tmp_path / "log") as live, live.client() as client:
        failures: list[int] = []
        stop = threading.Event()

        def traffic() -> None:  # requests in flight all through the reloads
            with live.client() as background:
                while not stop.is_set():
                    status = background.post(
                        "/v1/models/topics/predict", json={"texts": TEXTS[:4]}
                    ).status_code
                    if status != 200:
                        failures.append(status)

        thread = threading.Thread(target=traffic)
        thread.start()
        try:
            time.sleep(0.2)
            shutil.rmtree(served)
            shutil.copytree(fp32, served)
            swapped = client.post("/v1/models/topics/reload")
            assert swapped.status_code == 200, swapped.text
            assert swapped.json()["model_sha256"] == sha[fp32]
            assert swapped.json()["previous_sha256"] == sha[tiny_bundle]
            got = client.post("/v1/models/topics/predict", json={"texts": TEXTS[:3]}).json()
            assert [p["score"] for p in got["predictions"]] == [
                p.score for p in Predictor.load(fp32).predict(TEXTS[:3])
            ]
            (served / "model.onnx").write_bytes(b"not an onnx model" * 100)
            refused = client.post("/v1/models/topics/reload")
            assert refused.status_code == 409
            assert "model.onnx" in refused.json()["error"]["message"]
            time.sleep(0.2)
        finally:
            stop.set()
            thread.join()
        assert failures == []
        models = client.get("/v1/models").json()["models"]
        assert models[0]["model_sha256"] == sha[fp32]  # the good one keeps serving
        assert client.post("/v1/models/topics/predict", json={"texts": ["a"]}).status_code == 200
        shutil.rmtree(served)  # SIGHUP reloads every bundle from its path
        shutil.copytree(tiny_bundle, served)
        live.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 30
        while client.get("/v1/models").json()["models"][0]["model_sha256"] != sha[tiny_bundle]:
            assert time.monotonic() < deadline, "SIGHUP did not reload"
            time.sleep(0.05)


def test_a_reload_with_new_labels_answers_each_request_from_one_bundle(
    tiny_bundle: Path, tmp_path: Path
) -> None:
    renamed = tmp_path / "renamed"
    shutil.copytree(tiny_bundle, renamed)
    manifest = json.loads((renamed / "rec_edge.json").read_text())
    old_labels = list(manifest["labels"])
    manifest["labels"] = [f"new {label}" for label in old_labels]  # the same graph, new names
    (renamed / "rec_edge.json").write_text(json.dumps(manifest))
    served = tmp_path / "topics"
    shutil.copytree(tiny_bundle, served)
    with live_server([str(served), "--max-wait-ms", "5"], tmp_path / "log") as live:
        answers: list[set[str]] = []
        failures: list[str] = []
        stop = threading.Event()

        def traffic() -> None:
            with live.client() as client:
                while not stop.is_set():
                    response = client.post(
                        "/v1/models/topics/predict", json={"texts": TEXTS[:8], "top_k": 3}
                    )
                    if response.status_code != 200:
                        failures.append(response.text)
                        continue
                    answers.append(
                        {p["label"] for p in response.json()["predictions"]}
                        | {t["label"] for p in response.json()["predictions"] for t in p["top"]}
                    )

        threads = [threading.Thread(target=traffic) for _ in range(3)]
        for thread in threads:
            thread.start()
        try:
            with live.client() as client:
                for i in range(6):  # back and forth under traffic
                    source = renamed if i % 2 == 0 else tiny_bundle
                    shutil.rmtree(served)
                    shutil.copytree(source, served)
                    assert client.post("/v1/models/topics/reload").status_code == 200
                    time.sleep(0.1)
        finally:
            stop.set()
            for thread in threads:
                thread.join()
        old, new = set(old_labels), set(manifest["labels"])
        assert failures == [] and len(answers) > 20
        assert all(labels <= old or labels <= new for labels in answers)
        assert any(labels <= new for labels in answers) and any(labels <= old for labels in answers)


def test_sigterm_drains_requests_in_flight_and_exits_0(tiny_bundle: Path, tmp_path: Path) -> None:
    args = [str(tiny_bundle), "--max-batch", "1", "--max-texts", "16", "--max-queue", "4096"]
    args += ["--max-queue-ms", "600000"]  # everything is queued: the drain is under test
    name = tiny_bundle.name
    with live_server(args, tmp_path / "log") as live:
        bodies = [{"texts": random.Random(i).sample(TEXTS, 16)} for i in range(40)]

        async def run() -> list[httpx.Response]:
            async with live.async_client() as client:
                calls = [
                    asyncio.create_task(client.post(f"/v1/models/{name}/predict", json=b))
                    for b in bodies
                ]
                while True:  # until the server holds queued work
                    metrics = (await client.get("/metrics")).text
                    if _metric(metrics, "rec_edge_queue_items", model=name) > 0:
                        break
                    await asyncio.sleep(0.001)
                live.proc.send_signal(15)
                return await asyncio.gather(*calls)

        responses = asyncio.run(run())
        assert [r.status_code for r in responses] == [200] * len(bodies)
        assert live.proc.wait(timeout=60) == 0
        with pytest.raises(httpx.ConnectError):
            httpx.get(live.url + "/healthz", timeout=5)


def test_bundle_names_from_paths_and_pairs(tiny_bundle: Path) -> None:
    from click.testing import CliRunner

    from rec_edge.cli import main
    from rec_edge.cli.serve import bundle_names

    assert bundle_names((str(tiny_bundle),), ("other=/x",)) == {
        tiny_bundle.name: str(tiny_bundle),
        "other": "/x",
    }
    for paths, named, message in (
        ((), (), "Give at least one bundle"),
        ((str(tiny_bundle),), (f"{tiny_bundle.name}=/y",), "Two bundles are named"),
        ((), ("no-equals-sign",), "expected NAME=PATH"),
    ):
        result = CliRunner().invoke(main, ["serve", *paths, *[f"--bundle={n}" for n in named]])
        assert result.exit_code == 2 and message in result.output, result.output
    result = CliRunner().invoke(main, ["serve", "--bundle", "bad name=/x"])
    assert result.exit_code == 1 and "bundle names ['bad name']" in result.output


def test_the_socket_listens_before_the_url_is_announced() -> None:
    """A client that connects as soon as it reads the URL waits in the backlog while uvicorn
    starts; it is never refused (a CI run once was, between the bind and uvicorn's listen)."""
    import socket

    from rec_edge.config import ServeConfig
    from rec_edge.serve.server import _bind

    sock = _bind(ServeConfig(bundles={"any": "unused"}, port=0))
    try:
        with socket.create_connection(sock.getsockname()[:2], timeout=5):
            pass
    finally:
        sock.close()


def test_beyond_loopback_reload_needs_a_key_and_paths_stay_hidden(
    tiny_bundle: Path, tmp_path: Path
) -> None:
    """The app as uvicorn would serve it on every interface (nothing is bound here)."""
    from starlette.testclient import TestClient

    from rec_edge.config import ServeConfig
    from rec_edge.serve.server import create_app

    name = tiny_bundle.name
    wide = ServeConfig(bundles={name: str(tiny_bundle)}, host="0.0.0.0", access_log=False)
    with TestClient(create_app(wide)) as client:
        refused = client.post(f"/v1/models/{name}/reload")
        assert refused.status_code == 403
        assert "--api-key-file" in refused.json()["error"]["message"]
        (model,) = client.get("/v1/models").json()["models"]
        assert "path" not in model and str(tiny_bundle) not in client.get("/v1/models").text
    keys = tmp_path / "keys"
    keys.write_text("secret\n")
    keyed = ServeConfig(
        bundles={name: str(tiny_bundle)}, host="0.0.0.0", api_key_file=str(keys), show_paths=True
    )
    with TestClient(create_app(keyed)) as client:
        headers = {"Authorization": "Bearer secret"}
        assert client.post(f"/v1/models/{name}/reload", headers=headers).status_code == 200
        (model,) = client.get("/v1/models", headers=headers).json()["models"]
        assert model["path"] == str(tiny_bundle)
