"""The map of ARCHITECTURE.md, read from the code: the dependency direction between packages,
no import cycle between modules, and how tenant transactions are opened.

Imports are read wherever they stand (inside functions too): a deferred import is still a
dependency, and deferring one only hides a cycle.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: Domain packages, in their declared order: each imports only the ones before it.
DOMAIN_ORDER = ("tenants", "sso", "billing", "campaigns")
OURS = ("core", "engine", *DOMAIN_ORDER, "web", "admin", "api")

#: What each package may import of ours (besides itself).
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "engine": set(),
    **{
        package: {"core", "engine", *DOMAIN_ORDER[:rank]}
        for rank, package in enumerate(DOMAIN_ORDER)
    },
    "web": {"core", "engine", *DOMAIN_ORDER},
    "admin": {"core", "engine", *DOMAIN_ORDER, "web"},
    "api": {"core", "engine", *DOMAIN_ORDER, "web", "admin"},
}

#: The engine is pure computation: no database, web, network or job libraries.
ENGINE_FORBIDDEN = {"asyncpg", "piccolo", "litestar", "httpx", "redis", "arq", "jinja2", "socket"}


def _modules(package: str) -> list[Path]:
    return sorted(p for p in (ROOT / package).rglob("*.py") if "piccolo_migrations" not in p.parts)


def _name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str | None:
    """The absolute module a `from … import` names, relative ones resolved from `module`."""
    if node.level == 0:
        return node.module
    parts = module.split(".")
    base = parts if is_package else parts[:-1]
    base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
    return ".".join([*base, *([node.module] if node.module else [])]) or None


def _imported_names(tree: ast.Module, module: str = "", is_package: bool = False) -> Iterator[str]:
    """Every module name an import statement names, at any depth; for `from a import b`, both
    `a` and `a.b` (which of them is a module is for the caller to know). Relative imports are
    resolved from `module`."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            source = _absolute(node, module, is_package)
            if source:
                yield source
                yield from (f"{source}.{alias.name}" for alias in node.names)


def _top_level_imports(path: Path) -> set[str]:
    module = _name(path) if path.is_relative_to(ROOT) else path.stem
    names = _imported_names(_tree(path), module, path.name == "__init__.py")
    return {name.split(".")[0] for name in names}


ALL_MODULES = {_name(path): path for package in OURS for path in _modules(package)}


def _deepest_module(dotted: str) -> str | None:
    parts = dotted.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in ALL_MODULES:
            return candidate
    return None


def _module_graph() -> dict[str, set[str]]:
    """Module → the modules of ours it imports: for `from a import b`, the module `a.b` when
    there is one, else `a` (a package's `__init__` is not counted for its submodules)."""
    graph: dict[str, set[str]] = {}
    for name, path in ALL_MODULES.items():
        targets: set[str | None] = set()
        for node in ast.walk(_tree(path)):
            if isinstance(node, ast.Import):
                targets.update(_deepest_module(alias.name) for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                source = _absolute(node, name, path.name == "__init__.py")
                for alias in node.names if source else ():
                    targets.add(_deepest_module(f"{source}.{alias.name}"))
        graph[name] = {target for target in targets if target and target != name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_every_package_of_the_map_exists() -> None:
    for package in OURS:
        assert (ROOT / package / "__init__.py").is_file(), package


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_imports_follow_the_dependency_direction(package: str) -> None:
    wrong = {
        f"{path.relative_to(ROOT)} imports {name}"
        for path in _modules(package)
        for name in _top_level_imports(path) & set(OURS)
        if name != package and name not in ALLOWED[package]
    }
    assert not wrong, sorted(wrong)


def test_the_declared_order_is_what_the_allow_list_enforces() -> None:
    # campaigns may import billing, sso and tenants; tenants imports no domain package
    assert ALLOWED["campaigns"] >= {"tenants", "sso", "billing"}
    assert not ALLOWED["tenants"] & set(DOMAIN_ORDER)
    assert "campaigns" not in ALLOWED["billing"]
    assert "api" not in ALLOWED["admin"]


def test_imports_inside_functions_count(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("def later():\n    from campaigns.service import x\n    import billing.y\n")
    assert {"campaigns", "billing"} <= _top_level_imports(sample)


def test_relative_imports_are_resolved() -> None:
    tree = ast.parse("from ..campaigns import service\nfrom .endpoints import x\n")
    names = set(_imported_names(tree, "tenants.webhooks.delivery"))
    assert {"tenants.campaigns", "tenants.webhooks.endpoints"} <= names
    package = set(_imported_names(ast.parse("from . import events\n"), "tenants.webhooks", True))
    assert "tenants.webhooks.events" in package


def test_the_engine_does_no_io() -> None:
    wrong = {
        f"{path.relative_to(ROOT)} imports {name}"
        for path in _modules("engine")
        for name in _top_level_imports(path) & ENGINE_FORBIDDEN
    }
    assert not wrong, sorted(wrong)


def test_no_import_cycle_between_modules() -> None:
    assert _cycles(_module_graph()) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]


# --- how transactions are opened ------------------------------------------------------------

#: Openers of a transaction without a tenant, the switch of tenant inside one, and the scope a
#: job or a sweep builds from a tenant id it holds (never from what a person sends).
TENANTLESS = {
    "global_transaction",
    "dangerously_switch_tenant",
    "hinted_transaction",
    "SystemScope",
}
#: The primitive under them: core's alone.
PRIMITIVES = {"transaction"}

#: Where application code may open a tenantless transaction or switch tenant inside one, and
#: why. A function named `dangerously_*` may too: its name says it.
TENANTLESS_ALLOWED: dict[str, str] = {
    "tenants.accounts": "global accounts, credentials and sign-in tokens",
    "tenants.staff": "our staff are global, apart from every tenant",
    "tenants.staff_trail": "the staff trail is global, like our staff",
    "tenants.account_events.record_in_my_organizations": (
        "a person's own account change, told to each of their organizations in its transaction"
    ),
    "tenants.organizations.create_organization": "a new organization, then switch to it",
    "tenants.organizations.insert_organization": "switch to the new tenant",
    "tenants.organizations.signup": "account and organization created together",
    "tenants.organizations.my_organizations": "a person's own memberships",
    "tenants.organizations.member_context": "resolve a slug to the person's membership",
    "tenants.organizations.tenant_by_slug": "resolve a public slug to its organization",
    "tenants.organizations.tenant_by_id": "resolve a token's or a job's tenant id",
    "tenants.organizations.logo": "an organization's logo is public, like its landing page",
    "tenants.invitations._pending_by_token": "an invitation link names its organization",
    "tenants.invitations.pending_invitation": "an invitation link, before any membership",
    "tenants.invitations.accept_invitation": "the invitee becomes a member",
    "tenants.tokens.token_context": "the token names its tenant; its secret's digest must match",
    "tenants.webhooks.delivery.deliver_webhook": "a job holds the tenant id it was queued with",
    "tenants.webhooks.delivery.sweep_webhooks": "all tenants' due deliveries (ADR 0024)",
    "sso.provisioning.admit": "a proven identity names its tenant; its account is global",
    "sso.discovery.connections_for_email": "a verified email domain names its organization",
    "sso.policy.sso_required_connections": "a person's own memberships, then their policies",
    "sso.connections.connection_for_sign_in": "a sign-in URL names its tenant and connection",
    "sso.connections.connection_by_slug": "a sign-in URL names its tenant and connection",
    "campaigns.participation.landing.resolve_code": "a campaign code names its organization",
    "campaigns.participation.landing.closed_campaign": "a campaign code names its organization",
    "campaigns.participation.results.my_participations": "a person's own participations",
    "campaigns.problem_reports": "global flags, and samples through triage_report_samples",
    "campaigns.exposure": "the global, anonymous exposure ledger",
    "campaigns.invitations.mail_campaign_invitations": "a job holds the tenant id it was given",
    "billing.catalogue": "the catalogue of plans and prices is global, the same for all",
}


@dataclass(frozen=True)
class Call:
    module: str
    function: str
    name: str
    line: int


def _calls(module: str, tree: ast.Module) -> Iterator[Call]:
    def visit(node: ast.AST, function: str) -> Iterator[Call]:
        for child in ast.iter_child_nodes(node):
            inner = function
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef) and not function:
                inner = child.name
            if isinstance(child, ast.Call):
                callee = child.func
                name = callee.attr if isinstance(callee, ast.Attribute) else None
                if isinstance(callee, ast.Name):
                    name = callee.id
                if name:
                    yield Call(module, function, name, child.lineno)
            yield from visit(child, inner)

    yield from visit(tree, "")


def _application_calls() -> list[Call]:
    application = [package for package in OURS if package not in ("core", "engine")]
    return [
        call
        for package in application
        for path in _modules(package)
        for call in _calls(_name(path), _tree(path))
    ]


def _allowed(call: Call) -> bool:
    return (
        call.function.startswith("dangerously_")
        or call.module in TENANTLESS_ALLOWED
        or f"{call.module}.{call.function}" in TENANTLESS_ALLOWED
    )


def test_tenantless_transactions_stand_only_where_the_allow_list_says() -> None:
    wrong = [
        f"{call.module}:{call.line} {call.function}() calls {call.name}"
        for call in _application_calls()
        if call.name in TENANTLESS and not _allowed(call)
    ]
    assert wrong == []


def test_only_core_calls_the_transaction_primitives() -> None:
    wrong = [
        f"{call.module}:{call.line} {call.function}() calls {call.name}"
        for call in _application_calls()
        if call.name in PRIMITIVES
    ]
    assert wrong == []


def test_the_tracked_names_are_never_imported_under_another_name() -> None:
    tracked = TENANTLESS | PRIMITIVES | {"tenant_transaction"}
    aliased = [
        f"{_name(path)} imports {alias.name} as {alias.asname}"
        for package in OURS
        for path in _modules(package)
        for node in ast.walk(_tree(path))
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
        if alias.name in tracked and alias.asname
    ]
    assert aliased == []


def test_every_allow_listed_place_exists() -> None:
    calls = _application_calls()
    places = {call.module for call in calls} | {f"{c.module}.{c.function}" for c in calls}
    assert sorted(set(TENANTLESS_ALLOWED) - places) == []


def test_the_allow_list_check_catches_a_stray_global_transaction() -> None:
    source = "async def list_things(ctx):\n    async with global_transaction():\n        pass\n"
    tree = ast.parse(source)
    stray = [c for c in _calls("campaigns.service", tree) if c.name in TENANTLESS]
    assert [_allowed(c) for c in stray] == [False]
