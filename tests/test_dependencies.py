"""Every package the shipped code imports is declared in pyproject.toml, so that `pip install`
(the wheel, with its dependencies resolved) brings it: a runtime dependency, or an extra for the
modules that need one (``ray`` for ``track-video batch``)."""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Imported only by features that need an extra (the README names it): module -> extra.
NEEDS_EXTRA = {"ray": "batch"}


def _setup_mapping() -> dict[str, str]:
    spec = importlib.util.spec_from_file_location("promptrack_setup", ROOT / "setup.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # setup() runs only as __main__
    return module.MAPPED


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    return normalise(re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement).group(0))


def imported_modules() -> dict[str, set[str]]:
    """Top-level third-party modules imported anywhere in the shipped code (lazy imports included)."""
    found: dict[str, set[str]] = {}
    for folder in _setup_mapping().values():
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top not in sys.stdlib_module_names and top != "promptrack":
                        found.setdefault(top, set()).add(path.relative_to(ROOT).as_posix())
    return found


def test_every_imported_package_is_declared():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = {requirement_name(r) for r in project["dependencies"]}
    extras = {extra: {requirement_name(r) for r in group} for extra, group in project["optional-dependencies"].items()}
    distributions = importlib.metadata.packages_distributions()
    modules = imported_modules()
    assert {"torch", "sam2", "transformers", "ray"} <= set(modules), sorted(modules)  # the scan sees the imports
    undeclared = []
    for module, files in sorted(modules.items()):
        names = {normalise(d) for d in distributions.get(module, [])}
        allowed = extras[NEEDS_EXTRA[module]] if module in NEEDS_EXTRA else declared
        if not names:
            undeclared.append(f"{module} (imported by {sorted(files)[0]}) is not installed: which package is it?")
        elif not names & allowed:
            where = f"extra [{NEEDS_EXTRA[module]}]" if module in NEEDS_EXTRA else "dependencies"
            undeclared.append(f"{module} ({', '.join(sorted(names))}, imported by {sorted(files)[0]}) is not in "
                              f"pyproject.toml's {where}")
    assert undeclared == []
