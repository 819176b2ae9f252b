"""The packages form layers you can draw: each imports only from the layers below it.

    core (foundation: settings, io, metrics, usage, model hub)
      < prompts < tools < serving (model servers and the client)
      < graph < synth, finetune < eval < app (CLI, pipeline, chat app)

The check reads every module's imports from its source (top-level and inside
functions alike), maps them to the package folders that ``pyproject.toml`` declares,
and fails on any import that points sideways or up — so no import cycle between
packages can exist.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

#: Bottom to top; packages in one tuple sit side by side and must not import each other.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("autoact",), ("autoact.prompts",), ("autoact.tools",), ("autoact.serving",), ("autoact.graph",),
    ("autoact.synth", "autoact.finetune"), ("autoact.eval",), ("autoact.app",),
)


def package_folders(repo: Path = REPO) -> dict[str, Path]:
    """The project's packages with code (``pyproject.toml``'s package-dir), data-only ones left out."""
    config = tomllib.loads((repo / "pyproject.toml").read_text())
    folders = config["tool"]["setuptools"]["package-dir"]
    return {name: repo / folder for name, folder in folders.items() if any((repo / folder).glob("*.py"))}


def owner(module: str, packages: set[str]) -> str | None:
    """The package a dotted module name belongs to (the longest matching one), or None."""
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in packages:
            return ".".join(parts[:end])
    return None


def imports_of(path: Path) -> list[tuple[str, int]]:
    """Absolute module names a file imports (``from autoact import x`` counts as ``autoact.x``)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found += [(f"{node.module}.{alias.name}", node.lineno) for alias in node.names]
    return found


def layer_violations(folders: dict[str, Path], layers=LAYERS) -> list[str]:
    rank = {name: i for i, tier in enumerate(layers) for name in tier}
    missing = set(folders) - set(rank)
    if missing:
        return [f"package {name} has no layer; add it to LAYERS" for name in sorted(missing)]
    problems = []
    for package, folder in folders.items():
        for path in sorted(folder.glob("*.py")):
            for module, line in imports_of(path):
                target = owner(module, set(folders))
                if target is None or target == package:
                    continue
                if rank[target] >= rank[package]:
                    where = path.relative_to(folder.parent) if folder.parent in path.parents else path
                    problems.append(f"{where}:{line}: {package} imports {module} ({target} is not below it)")
    return problems


def test_every_package_imports_only_from_the_layers_below():
    folders = package_folders()
    assert {"autoact", "autoact.graph", "autoact.app"} <= set(folders)
    assert layer_violations(folders) == []


def test_the_check_finds_an_upward_import(tmp_path):
    # a foundation module that imports the application: the check must name it
    (tmp_path / "core").mkdir()
    (tmp_path / "app").mkdir()
    (tmp_path / "core" / "settings.py").write_text("def f():\n    from autoact.app.cli import main\n")
    (tmp_path / "app" / "cli.py").write_text("from autoact import settings\n")
    (tmp_path / "pyproject.toml").write_text(
        '[tool.setuptools]\npackage-dir = { "autoact" = "core", "autoact.app" = "app" }\n')
    problems = layer_violations(package_folders(tmp_path), (("autoact",), ("autoact.app",)))
    assert problems == ["core/settings.py:2: autoact imports autoact.app.cli.main (autoact.app is not below it)"]
    # and side by side is refused too
    assert layer_violations(package_folders(tmp_path), (("autoact", "autoact.app"),))
