"""promptrack: text-prompted video tracking (open-set detector + SAM 2 + persistent ids).

The code lives in two subpackages, mapped from the repository's top-level folders:
``promptrack.pipeline`` (``pipeline/``) and ``promptrack.trackers`` (``trackers/``).
"""

__version__ = "0.1.0"
