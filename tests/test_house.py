"""The house rules the code keeps (issue 42): tasks are declared once and branched on in one
module; every table that maps a task to its pieces names declared tasks only; no function over
80 lines and no file over 500 outside tests."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import rec_edge
from rec_edge.tasks import TASKS, task_spec

PACKAGE = Path(rec_edge.__file__).parent
SOURCES = sorted(PACKAGE.rglob("*.py"))


def test_only_the_registry_branches_on_a_task_name() -> None:
    branch = re.compile(r"""task\s*(==|!=)\s*["']|["']\s*(==|!=)\s*\S*task\b""")
    found = [
        f"{path.relative_to(PACKAGE)}:{number}: {line.strip()}"
        for path in SOURCES
        if path.name != "tasks.py"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if branch.search(line)
    ]
    assert not found, "ask rec_edge.tasks.task_spec(name) instead:\n" + "\n".join(found)


def test_every_task_table_names_declared_tasks() -> None:
    from rec_edge.runtime.generator import DECODER_TASKS
    from rec_edge.runtime.predictor import TASKS as ENCODER_TASKS
    from rec_edge.scoring.scorer import SCORED_TASKS
    from rec_edge.serve.models import SERVED_TASKS

    for table in (DECODER_TASKS, ENCODER_TASKS, SCORED_TASKS, SERVED_TASKS):
        assert set(table) <= set(TASKS), sorted(table)
    assert set(DECODER_TASKS) == set(TASKS)  # a language model takes every task
    assert {name for name, spec in TASKS.items() if not spec.writes} <= set(ENCODER_TASKS)


def test_an_unknown_task_names_the_known_ones() -> None:
    try:
        task_spec("summarize")
    except rec_edge.errors.ConfigError as error:
        assert "classify, rank, generate" in str(error)
    else:
        raise AssertionError("an unknown task was declared")


def test_no_function_over_80_lines_and_no_file_over_500() -> None:
    long_files = [
        f"{p.relative_to(PACKAGE)}: {n} lines"
        for p in SOURCES
        if (n := len(p.read_text().splitlines())) > 500
    ]
    long_functions = [
        f"{p.relative_to(PACKAGE)}:{node.lineno} {node.name}: {n} lines"
        for p in SOURCES
        for node in ast.walk(ast.parse(p.read_text()))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and (n := (node.end_lineno or node.lineno) - node.lineno + 1) > 80
    ]
    assert not long_files + long_functions, long_files + long_functions
