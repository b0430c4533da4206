"""Dependencies run one way (README, Development): the kernel imports no domain, the outbox
knows no other domain, circulation sits under books, holds and borrowings, and no two
domains need each other. Routers (the API's edge, which take their services from the
composition root), the admin and the entry points sit on top and are left out."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import library_service

PACKAGE = Path(library_service.__file__).parent
TOP = {"admin", "services", "main", "worker", "cli", "supervisor", "dev", "__main__"}


def _imports() -> dict[str, set[str]]:
    """For each first-level part of the package: the other parts its modules import."""
    edges: dict[str, set[str]] = defaultdict(set)
    for path in PACKAGE.rglob("*.py"):
        part = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
        if part in TOP or path.name == "router.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                "library_service."
            ):
                target = node.module.split(".")[1]  # type: ignore[union-attr]
                if target != part:
                    edges[part].add(target)
    return edges


def test_the_kernel_and_the_web_plumbing_import_no_domain():
    edges = _imports()
    assert edges["core"] <= {"models"}
    assert edges["web"] <= {"core", "models"}
    assert edges["notifications"] <= {"core", "models"}
    assert edges["circulation"] <= {"core", "models", "notifications"}


def test_no_two_parts_import_each_other():
    edges = _imports()
    both_ways = sorted(
        (part, other)
        for part, targets in edges.items()
        for other in targets
        if part < other and part in edges.get(other, set())
    )
    assert both_ways == []


def test_nothing_below_the_top_imports_it():
    edges = _imports()
    assert {part: targets & TOP for part, targets in edges.items() if targets & TOP} == {}
