"""What a batch run has to do: the list of videos, each with its prompt and output names.

Inputs are video files, frame folders, glob patterns (``"videos/*.mp4"``, ``"**"`` recurses) and
manifests: a text file with one path a line (``#`` starts a comment), or a CSV with a header
that names a ``path`` column and, optionally, a ``prompt`` column (one prompt per video; an empty
cell takes ``--prompt``). Relative paths in a manifest are read from the manifest's folder.

Each video's outputs are named as a single run names them, ``<stem>.tracks.json`` and
``<stem>.annotated.mp4``; when two inputs share a stem, the later ones get ``<stem>-2``, ``-3``...
in input order. A video counts as done when its ``tracks.json`` parses, belongs to this source
and prompt, covers every frame asked for, and the other outputs asked for are there (the worker
writes the JSON last, so a JSON that is there means the rest is complete).

Example:
    >>> jobs = plan_jobs(["videos/*.mp4"], "person . car", "out")      # doctest: +SKIP
    >>> jobs[0].stem, jobs[0].phrases                                  # doctest: +SKIP
    ('clip', ['person', 'car'])
"""

from __future__ import annotations

import csv
import glob
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from ..config import Config
from ..errors import InputError, PromptrackError
from ..prompts import parse_prompt
from ..sources import IMAGE_SUFFIXES, VIDEO_SUFFIXES, open_source

MANIFEST_SUFFIXES = {".txt", ".csv", ".tsv", ".lst", ".list"}
PATH_COLUMNS = ("path", "video", "source", "file", "uri", "input")
GLOB_CHARS = set("*?[")


@dataclass(frozen=True)
class VideoJob:
    """One video of a batch: where it is, what to track in it, and the stem of its outputs."""

    source: str  # absolute path of a video file or frame folder
    phrases: tuple[str, ...]
    stem: str

    def outputs(self, output_dir: str | os.PathLike, config: Config) -> dict[str, Path]:
        """The files this video's run writes ("json", "video", "mot"), named as a single run names them."""
        out = Path(output_dir)
        paths = {"json": out / f"{self.stem}.tracks.json"}
        if config.output.video:
            paths["video"] = out / f"{self.stem}.annotated.mp4"
        if config.output.mot:
            paths["mot"] = out / f"{self.stem}.mot.txt"
        return paths


def plan_jobs(inputs: str | os.PathLike | Sequence[str | os.PathLike], prompt: str | Sequence[str] | None,
              output_dir: str | os.PathLike) -> list[VideoJob]:
    """Expand `inputs` (paths, globs, folders, manifests) into jobs with unique stems.

    Raises a :class:`PromptrackError` (a bad argument) when an input matches nothing, a video
    has no prompt, or a line is a live stream.
    """
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    default = parse_prompt(prompt) if prompt is not None else None
    entries: list[tuple[str, list[str] | None]] = []
    for item in inputs:
        entries.extend(_expand(str(item)))
    if not entries:
        raise InputError("no videos to track: give video files, folders, a glob such as \"videos/*.mp4\" or a manifest")
    jobs, taken, seen = [], set(), set()
    for source, phrases in entries:
        if source in seen:  # listed twice (a glob and its folder): tracked once
            continue
        seen.add(source)
        phrases = phrases or default
        if phrases is None:
            raise InputError(f'no prompt for {source}: pass --prompt "person . car" or add a prompt column to the manifest')
        stem = _unique(Path(source.rstrip("/")).stem or "video", taken)
        jobs.append(VideoJob(source, tuple(phrases), stem))
    return jobs


def _unique(stem: str, taken: set[str]) -> str:
    name, n = stem, 1
    while name in taken:
        n += 1
        name = f"{stem}-{n}"
    taken.add(name)
    return name


def _expand(item: str) -> list[tuple[str, list[str] | None]]:
    """One command-line input as (absolute source, prompt or None) entries."""
    _refuse_stream(item, item)
    path = Path(item).expanduser()
    if any(c in item for c in GLOB_CHARS) and not path.exists():
        matches = sorted(glob.glob(str(path), recursive=True))
        videos = [m for m in matches if _is_source(Path(m))]
        if not videos:
            raise InputError(f"no video files or frame folders match {item!r}")
        return [(_absolute(Path(m)), None) for m in videos]
    if not path.exists():
        raise InputError(f"input not found: {item}")
    if path.is_file() and path.suffix.lower() in MANIFEST_SUFFIXES:
        return _read_manifest(path)
    if path.is_dir():
        videos = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
        if videos:  # a folder of videos; a folder of images is one frame-folder source
            return [(_absolute(p), None) for p in videos]
    return [(_absolute(path), None)]


def _is_source(path: Path) -> bool:
    if path.is_file():
        return path.suffix.lower() in VIDEO_SUFFIXES
    return path.is_dir() and any(p.suffix.lower() in IMAGE_SUFFIXES for p in path.iterdir())


def _refuse_stream(text: str, where: str) -> None:
    from ..live.capture import is_live_uri

    if is_live_uri(text):
        raise InputError(f"{where}: {text} is a stream, which never ends; batch tracks files and frame folders "
                         f"(run `track-video {text} --prompt ...` for a stream)")


def _read_manifest(path: Path) -> list[tuple[str, list[str] | None]]:
    """A text manifest (one path a line) or a CSV/TSV with a header naming a path column."""
    text = path.read_text(encoding="utf-8-sig")
    lines = [line.strip() for line in text.splitlines()]
    if path.suffix.lower() not in (".csv", ".tsv"):
        entries = []
        for number, line in enumerate(lines, 1):
            if line and not line.startswith("#"):
                _refuse_stream(line, f"{path}:{number}")
                entries.append((_resolve(line, path), None))
        return entries
    rows = list(csv.DictReader(text.splitlines(), delimiter="\t" if path.suffix.lower() == ".tsv" else ","))
    header = {name.strip().lower(): name for name in (rows[0].keys() if rows else [])}
    column = next((header[c] for c in PATH_COLUMNS if c in header), None)
    if column is None:
        raise InputError(f"{path}: the CSV needs a header with a path column ({', '.join(PATH_COLUMNS[:2])}, ...) "
                         "and optionally a prompt column")
    prompt_column = header.get("prompt")
    entries = []
    for number, row in enumerate(rows, 2):
        value = (row.get(column) or "").strip()
        if not value or value.startswith("#"):
            continue
        _refuse_stream(value, f"{path}:{number}")
        prompt = (row.get(prompt_column) or "").strip() if prompt_column else ""
        entries.append((_resolve(value, path), parse_prompt(prompt) if prompt else None))
    return entries


def _resolve(entry: str, manifest: Path) -> str:
    path = Path(entry).expanduser()
    return _absolute(path if path.is_absolute() else manifest.parent / path)


def _absolute(path: Path) -> str:
    """Absolute and normalised, links kept: two links to one file are two videos with their own names."""
    return os.path.abspath(path)


def expected_frames(job: VideoJob, config: Config) -> int:
    """How many frames a complete run of `job` writes (the source's frames within start/end/max_frames)."""
    return len(open_source(job.source, start=config.start, end=config.end, max_frames=config.max_frames))


def completed_run(job: VideoJob, output_dir: str | os.PathLike, config: Config) -> dict[str, Any] | None:
    """``{"frames", "tracks"}`` of a finished earlier run of `job`, or None when it must run (again)."""
    paths = job.outputs(output_dir, config)
    try:
        data = json.loads(paths["json"].read_text(encoding="utf-8"))
        source, frames = data["source"], data["frames"]
        same = (source["uri"] == job.source and list(data["prompt"]) == list(job.phrases)
                and source["frames"] == len(frames))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not same or not all(p.is_file() for p in paths.values()):
        return None
    try:
        if len(frames) != expected_frames(job, config):
            return None
    except PromptrackError:
        return None
    return {"frames": len(frames), "tracks": len(data.get("tracks", []))}
