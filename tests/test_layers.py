"""The import contract of ARCHITECTURE.md, enforced by walking every module's imports."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src" / "dynamokv"

# package -> packages it may import from dynamokv (besides itself and dynamokv.errors)
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "wire": {"core"},
    "storage": {"core", "wire"},
    "client": {"core", "wire"},
    "api": {"core"},
    "sim": {"core", "wire", "storage"},
    "runtime": {"core", "wire", "storage", "api"},
    "cli": {"core", "wire", "storage", "api", "runtime", "client", "sim"},
    # The bridge between the async API and the asyncio-free simulator: it drives api/ on a
    # virtual-time event loop over sim/, so it needs both, and never runtime's real loop/sockets.
    "simapi": {"core", "sim", "api"},
}
FORBIDDEN_IN_CORE = {"asyncio", "socket", "time", "uuid", "os", "threading", "subprocess",
                     "selectors", "msgpack", "lmdb", "sqlite3"}
FORBIDDEN_IN_SIM = {"asyncio", "socket", "time", "threading", "subprocess"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_packages_only_import_what_they_may() -> None:
    problems = []
    for package, allowed in ALLOWED.items():
        for path in sorted((SRC / package).rglob("*.py")):
            for name in _imports(path):
                parts = name.split(".")
                if parts[0] == "dynamokv" and len(parts) > 1:
                    target = parts[1]
                    if target in (package, "errors"):
                        continue
                    if target not in allowed:
                        problems.append(f"{path.relative_to(SRC)} imports {name}")
                if package == "core" and parts[0] in FORBIDDEN_IN_CORE:
                    problems.append(f"{path.relative_to(SRC)} imports {name} (core is sans-IO)")
                if package == "sim" and parts[0] in FORBIDDEN_IN_SIM:
                    problems.append(f"{path.relative_to(SRC)} imports {name} (sim is virtual)")
    assert not problems, "\n".join(problems)


def test_nothing_imports_the_cli() -> None:
    offenders = [
        str(path.relative_to(SRC))
        for path in SRC.rglob("*.py")
        if "cli" not in path.relative_to(SRC).parts[:1] and path.name != "__main__.py"
        and any(n == "dynamokv.cli" or n.startswith("dynamokv.cli.") for n in _imports(path))
    ]
    assert not offenders


def test_core_uses_no_module_level_random() -> None:
    offenders = []
    for path in (SRC / "core").rglob("*.py"):
        text = path.read_text()
        for fn in ("random.random(", "random.choice(", "random.randint(", "random.shuffle("):
            if fn in text:
                offenders.append(f"{path.name}: {fn}")
    assert not offenders
