"""The servers rec-edge serve is measured against (benchmarks/serve_load.py), each serving the
same Predictor. Run in .venv-serve (benchmarks/serve-constraints.txt):

    python benchmarks/serve_peers.py naive BUNDLE --port 8001
    python benchmarks/serve_peers.py litserve BUNDLE --port 8002 --max-batch-size 32 --batch-timeout 0.005

naive: the obvious hand-written server, FastAPI + Predictor.predict (or .rank) per request, a
plain `def` endpoint (FastAPI runs it in its thread pool), no batching.
litserve: LitServe with its own batching on (max_batch_size, batch_timeout), one worker.
Both take the same JSON bodies as rec-edge serve and answer with the same fields.
"""

import argparse
from typing import Any

import litserve as ls

from rec_edge.runtime import Predictor
from rec_edge.runtime.requests import RankRequest


def naive(bundle: str, port: int, threads: int | None = None) -> None:
    import uvicorn
    from fastapi import FastAPI
    from pydantic import BaseModel

    predictor = Predictor.load(bundle, threads=threads)
    app = FastAPI()

    class Texts(BaseModel):
        texts: list[str]

    class RankBody(BaseModel):
        liked: list[str] = []
        disliked: list[str] = []
        candidates: list[str]
        k: int | None = None

    @app.post("/predict")
    def predict(body: Texts) -> dict[str, Any]:
        return {
            "predictions": [
                {"label": p.label, "score": p.score} for p in predictor.predict(body.texts)
            ]
        }

    @app.post("/rank")
    def rank(body: RankBody) -> dict[str, Any]:
        ranked = predictor.rank(
            {"liked": body.liked, "disliked": body.disliked}, body.candidates, body.k
        )
        return {"items": [{"item": r.item, "score": r.score, "enjoy": r.enjoy} for r in ranked]}

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


class PredictAPI(ls.LitAPI):  # type: ignore[misc]
    """LitServe's API over the Predictor (module level: LitServe pickles it into its worker)."""

    def __init__(self, bundle: str, threads: int | None = None, **options: Any):
        super().__init__(**options)
        self.bundle = bundle
        self.threads = threads

    def setup(self, device: str) -> None:
        self.predictor = Predictor.load(self.bundle, threads=self.threads)
        self.rank = self.predictor.manifest.task == "rank"

    def decode_request(self, request: dict[str, Any]) -> Any:
        if self.rank:
            return RankRequest(
                request.get("liked", []),
                request.get("disliked", []),
                request["candidates"],
                request.get("k"),
            )
        return request["texts"][0]  # one text a request, as in the load test

    def predict(self, batch: list[Any]) -> list[Any]:
        if self.rank:
            return self.predictor.rank_batch(batch)
        return self.predictor.predict(batch)

    def encode_response(self, output: Any) -> dict[str, Any]:
        if self.rank:
            return {"items": [{"item": r.item, "score": r.score} for r in output]}
        return {"predictions": [{"label": output.label, "score": output.score}]}


def litserve(
    bundle: str, port: int, max_batch_size: int, batch_timeout: float, threads: int | None = None
) -> None:
    api = PredictAPI(
        bundle, threads=threads, max_batch_size=max_batch_size, batch_timeout=batch_timeout
    )
    server = ls.LitServer(api, accelerator="cpu", workers_per_device=1, timeout=30)
    server.run(port=port, host="127.0.0.1", generate_client_file=False, log_level="warning")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=["naive", "litserve"])
    parser.add_argument("bundle")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--max-batch-size", type=int, default=32)
    parser.add_argument("--batch-timeout", type=float, default=0.005)
    parser.add_argument(
        "--threads", type=int, help="onnxruntime intra-op threads (default: its own)"
    )
    args = parser.parse_args()
    if args.kind == "naive":
        naive(args.bundle, args.port, args.threads)
    else:
        litserve(args.bundle, args.port, args.max_batch_size, args.batch_timeout, args.threads)


if __name__ == "__main__":
    main()
