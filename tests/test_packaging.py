"""The wheel holds every package of the tree: an editable install hides a missing one, users' don't.

Builds the real wheel (setuptools, no network, no build isolation) from a copy of the project and
checks it against the folders: every folder with an ``__init__.py`` under a folder mapped into
``promptrack`` is a package in the wheel, with all its modules, and the presets ship beside them.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Top-level folders that hold no code of the package (tests, benchmarks, notebooks, the sample clip).
NOT_PACKAGED = {"tests", "bench", "notebooks", "assets", "out", "build", "dist"}


def _setup_module():
    spec = importlib.util.spec_from_file_location("promptrack_setup", ROOT / "setup.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # defines MAPPED and discover(); setup() runs only as __main__
    return module


def _packages_in_tree(mapped: dict[str, str]) -> dict[str, Path]:
    """Every package the tree holds, by import name, found by walking the folders (not by setuptools)."""
    found = {}
    for name, folder in mapped.items():
        base = ROOT / folder
        for init in base.rglob("__init__.py"):
            if "__pycache__" in init.parts:
                continue
            rel = init.parent.relative_to(base)
            found[".".join([name, *rel.parts])] = init.parent
    return found


@pytest.fixture(scope="module")
def wheel_names(tmp_path_factory) -> set[str]:
    src = tmp_path_factory.mktemp("src")
    mapped = _setup_module().MAPPED
    for item in ("pyproject.toml", "setup.py", "README.md", *mapped.values()):
        path = ROOT / item
        if path.is_dir():
            shutil.copytree(path, src / item, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(path, src / item)
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(dist), str(src)],
        check=True, capture_output=True, text=True,
    )
    (wheel,) = dist.glob("promptrack-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        return set(zf.namelist())


def test_every_package_folder_is_mapped_or_discovered():
    setup = _setup_module()
    tree = _packages_in_tree(setup.MAPPED)
    assert {"promptrack.pipeline.live", "promptrack.pipeline.detectors"} <= set(tree)
    assert sorted(setup.discover(setup.MAPPED)) == sorted(tree)
    # A new top-level code folder must be mapped too, or it would silently stay out of the wheel.
    mapped_folders = set(setup.MAPPED.values())
    for init in ROOT.glob("*/__init__.py"):
        folder = init.parent.name
        assert folder in mapped_folders or folder in NOT_PACKAGED, f"{folder}/ is not mapped in setup.py"


def test_wheel_holds_every_package_module_and_preset(wheel_names):
    setup = _setup_module()
    for name, folder in _packages_in_tree(setup.MAPPED).items():
        prefix = name.replace(".", "/")
        assert f"{prefix}/__init__.py" in wheel_names, f"package {name} ({folder}) is missing from the wheel"
        for module in folder.glob("*.py"):
            assert f"{prefix}/{module.name}" in wheel_names, f"{prefix}/{module.name} is missing from the wheel"
    presets = sorted(p.name for p in (ROOT / setup.MAPPED["promptrack.configs"]).glob("*.yaml"))
    assert "default.yaml" in presets
    for preset in presets:
        assert f"promptrack/configs/{preset}" in wheel_names
    # Nothing outside the package: tests and benchmarks stay out of users' site-packages.
    assert not [n for n in wheel_names if n.split("/")[0] in NOT_PACKAGED]
