"""The dependency direction of ARCHITECTURE.md, read from the imports of every module."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OURS = ("core", "tenants", "engine", "campaigns", "sso", "billing", "api", "admin")
DOMAIN = ("tenants", "campaigns", "sso", "billing")

#: What each package may import of ours (besides itself).
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "engine": set(),
    **{package: {"core", "engine", *DOMAIN} for package in DOMAIN},
    "admin": {"core", "engine", *DOMAIN},
    "api": {"core", "engine", *DOMAIN, "admin"},
}

#: The engine is pure computation: no database, web, network or job libraries.
ENGINE_FORBIDDEN = {"asyncpg", "piccolo", "litestar", "httpx", "redis", "arq", "jinja2", "socket"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def _modules(package: str) -> list[Path]:
    return [p for p in (ROOT / package).rglob("*.py") if "piccolo_migrations" not in p.parts]


def test_every_package_of_the_map_exists() -> None:
    for package in OURS:
        assert (ROOT / package / "__init__.py").is_file(), package


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_imports_follow_the_dependency_direction(package: str) -> None:
    wrong = {
        f"{path.relative_to(ROOT)} imports {name}"
        for path in _modules(package)
        for name in _imports(path) & set(OURS)
        if name != package and name not in ALLOWED[package]
    }
    assert not wrong, sorted(wrong)


def test_the_engine_does_no_io() -> None:
    wrong = {
        f"{path.relative_to(ROOT)} imports {name}"
        for path in _modules("engine")
        for name in _imports(path) & ENGINE_FORBIDDEN
    }
    assert not wrong, sorted(wrong)


def test_domain_packages_have_no_import_cycle() -> None:
    graph = {
        package: {name for path in _modules(package) for name in _imports(path) & set(DOMAIN)}
        - {package}
        for package in DOMAIN
    }

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(
            nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt}))
            for nxt in graph[start]
        )

    assert [p for p in DOMAIN if reaches(p, p, set())] == []
