"""TORCH-FREE `serve()`: load and warm the bundles, bind the socket, run uvicorn; SIGTERM drains
the requests in flight and returns (exit 0); ``workers > 1`` runs that many processes on one
socket, each with its own copy of every bundle."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable
from typing import Any

from rec_edge.bundle import load_bundle
from rec_edge.config import ServeConfig, config_to_dict
from rec_edge.errors import MissingDependencyError

CONFIG_ENV = (
    "REC_EDGE_SERVE_CONFIG"  # how a worker process gets the config (uvicorn imports the app)
)
log = logging.getLogger("rec_edge.serve")


def create_app(config: ServeConfig) -> Any:
    """The ASGI application for ``config``: every bundle loaded, checked and warmed."""
    from rec_edge.serve.app import Server
    from rec_edge.serve.models import ServedModel, load_predictor

    models = {
        name: ServedModel(name, path, load_predictor(path, config), config)
        for name, path in config.bundles.items()
    }
    return Server(config, models).app


def app_from_environment() -> Any:
    """uvicorn's factory in each worker process (``workers > 1``)."""
    return create_app(ServeConfig(**json.loads(os.environ[CONFIG_ENV])))


def _bind(config: ServeConfig) -> socket.socket:
    family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((config.host, config.port))
    # listen now, before the URL is announced: a client that connects while uvicorn starts
    # waits in the backlog instead of being refused
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _logging(config: ServeConfig) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    access = logging.getLogger("rec_edge.access")
    access.handlers[:] = [handler]
    access.propagate = False
    access.setLevel(logging.INFO if config.access_log else logging.WARNING)
    server_log = logging.getLogger("rec_edge.serve")
    if not server_log.handlers:
        server_log.addHandler(logging.StreamHandler(sys.stderr))
    server_log.setLevel(logging.INFO)


def serve(config: ServeConfig, announce: Callable[[str], None] = print) -> None:
    """Serve until SIGTERM or SIGINT, then drain and return. ``announce`` gets the URL once the
    socket listens (with ``port=0`` the port is the one the system picked)."""
    try:
        import uvicorn
    except ImportError:
        raise MissingDependencyError(
            "rec-edge serve needs the [serve] extra: pip install 'rec-edge[serve]'"
        ) from None
    _logging(config)
    if config.workers == 1:
        app = create_app(config)  # a bad bundle fails here, with its name, before the socket
    else:  # each worker loads its own; here only the manifests and checksums, in little memory
        for path in config.bundles.values():
            load_bundle(path, verify=True)
    sock = _bind(config)
    host, port = sock.getsockname()[:2]
    options: dict[str, Any] = dict(
        log_level="warning",
        access_log=False,  # ours is one JSON line per request
        timeout_graceful_shutdown=config.timeout_s + 5,
        server_header=False,
    )
    # uvicorn re-raises the signal it stopped on after a graceful shutdown; a handler of ours
    # turns that into a normal return (exit 0) instead of death by the default action
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    url = f"http://{'[' + host + ']' if ':' in host else host}:{port}"
    if config.workers == 1:
        server = uvicorn.Server(uvicorn.Config(app, **options))
        announce(f"serving {', '.join(config.bundles)} on {url}")
        server.run(sockets=[sock])
        return
    os.environ[CONFIG_ENV] = json.dumps(config_to_dict(config))
    from uvicorn.supervisors import Multiprocess

    uv_config = uvicorn.Config(
        "rec_edge.serve.server:app_from_environment",
        factory=True,
        workers=config.workers,
        **options,
    )
    announce(f"serving {', '.join(config.bundles)} on {url} ({config.workers} workers)")
    Multiprocess(uv_config, sockets=[sock]).run()
