"""Package discovery over the folders that pyproject.toml maps into ``promptrack``.

Every code folder at the top of the repository is one subpackage (``pipeline/`` is
``promptrack.pipeline``, see docs/ARCHITECTURE.md); setuptools' own discovery cannot add that prefix, so this
file finds every package below each mapped folder. A new folder with an ``__init__.py`` ships
without editing a list (``tests/test_packaging.py`` checks the built wheel against the tree).
"""

from setuptools import find_packages, setup

# import name -> folder; the one place the mapping is written.
MAPPED = {
    "promptrack": "promptrack",
    "promptrack.configs": "configs",
    "promptrack.pipeline": "pipeline",
    "promptrack.trackers": "trackers",
}


def discover(mapped: dict[str, str]) -> list[str]:
    packages = []
    for name, folder in mapped.items():
        packages += [name] + [f"{name}.{sub}" for sub in find_packages(folder)]
    return packages


if __name__ == "__main__":  # setuptools runs this file as __main__; tests import MAPPED and discover()
    setup(package_dir=MAPPED, packages=discover(MAPPED))
