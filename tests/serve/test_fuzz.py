"""`rec-edge serve` fuzzed against its own /openapi.json (schemathesis, bounded examples): every
operation the server lists, over a classify, a rank and a generate bundle. No answer is a 5xx;
each keeps to the schema (status, content type, body); a request the schema allows is answered
and one it forbids is refused with an error that names the field; a 405 says what is allowed."""

from __future__ import annotations

from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.helpers import live_server

EXAMPLES = 12  # per operation: each is a real request to a real server


def test_the_server_keeps_to_its_schema(
    tiny_bundle: Path, rank_bundle: Path, writer_bundle: Path, tmp_path: Path
) -> None:
    names = [f"topics={tiny_bundle}", f"movies={rank_bundle}", f"writer={writer_bundle}"]
    args = [x for name in names for x in ("--bundle", name)]
    args += ["--max-texts", "8", "--max-chars", "200", "--max-candidates", "50"]
    failures: dict[str, str] = {}
    with live_server(args, tmp_path / "log") as live:
        schema = schemathesis.openapi.from_url(f"{live.url}/openapi.json")
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) >= 10  # every route, each bundle's task among them

        for operation in operations:

            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy())
            def check(case: schemathesis.Case) -> None:
                case.call_and_validate(timeout=60)

            try:
                check()
            except (Exception, BaseExceptionGroup) as error:  # noqa: BLE001  # all, then assert
                failures[operation.label] = str(error)[:2000]
    assert not failures, "\n\n".join(f"{k}:\n{v}" for k, v in failures.items())
