"""Other libraries' bars and warnings during a run (pipeline/quiet.py): none with progress=False
(--quiet), and with progress=True no "Loading weights" bar and an advisory once, not per run."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

# A detector family whose loading does what transformers does on every load of a cached model:
# an advisory warning (once a process, as transformers' torchvision fallback) and a "Loading
# weights" bar, after its model folder is resolved as every transformers family's is.
SCRIPT = textwrap.dedent('''
    import os, sys
    from pathlib import Path
    sys.path.insert(0, os.getcwd())  # the tests folder
    import cv2, numpy as np, supervision as sv
    from transformers.utils import logging as tl
    from promptrack.pipeline import loop, track_video
    from promptrack.pipeline.detectors import DetectorSpec, register
    from promptrack.pipeline.models import resolve_folder
    from test_detectors_plugins import BoxMaskTracker

    folder, frames = Path(sys.argv[1]) / "model", Path(sys.argv[1]) / "frames"
    folder.mkdir(); frames.mkdir()
    (folder / "config.json").write_text("{}")
    for i in range(3):
        cv2.imwrite(str(frames / f"{i:05d}.png"), np.full((32, 48, 3), 60, np.uint8))

    class Nothing:
        def detect(self, frame, phrases):
            return sv.Detections.empty()

    def build(config, device):
        resolve_folder(config.model)
        tl.get_logger("transformers.image_processing").warning_once(
            "`FakeImageProcessor` requires torchvision (not installed); falling back")
        for _ in tl.tqdm(range(50), desc="Loading weights", mininterval=0):
            pass
        return Nothing()

    register(DetectorSpec("chatty", build, needs="nothing", about="test"))
    loop.build_sam2_tracker = lambda config, device: BoxMaskTracker()
    loop.find_weights = lambda config, **which: None  # the stub tracker reads no SAM 2 file
    verbosity, bars = tl.get_verbosity(), tl.is_progress_bar_enabled()
    for progress in [p == "on" for p in sys.argv[2:]]:
        print(f"=== progress {progress}", file=sys.stderr, flush=True)
        track_video(frames, "car", output_dir=None, progress=progress, device="cpu",
                    detector__name="chatty", detector__model=str(folder))
    print(f"=== restored {tl.get_verbosity() == verbosity and tl.is_progress_bar_enabled() == bars}",
          file=sys.stderr, flush=True)
''')


def runs(tmp_path: Path, *progress: str) -> dict[str, str]:
    """stderr of each run (keyed "progress True" / "progress False", numbered when repeated)."""
    script = tmp_path / "chatty.py"
    script.write_text(SCRIPT)
    # A fresh process with the libraries' own defaults: an in-process `track-video --quiet` earlier in
    # the test session sets TRANSFORMERS_VERBOSITY / HF_HUB_DISABLE_PROGRESS_BARS in this process's env.
    env = {k: v for k, v in os.environ.items() if k not in ("TRANSFORMERS_VERBOSITY", "HF_HUB_DISABLE_PROGRESS_BARS")}
    done = subprocess.run([sys.executable, str(script), str(tmp_path), *progress], capture_output=True, text=True,
                          timeout=600, cwd=Path(__file__).parent, env=env)
    assert done.returncode == 0, done.stderr
    parts = done.stderr.split("=== ")
    assert parts[-1].strip() == "restored True"  # a notebook keeps its own settings after the runs
    return {f"{k} {part.split(chr(10), 1)[0]}": part for k, part in enumerate(parts[1:-1])}


def test_progress_false_shows_no_library_bar_or_warning(tmp_path):
    (quiet,) = runs(tmp_path, "off").values()
    assert "Loading weights" not in quiet and "requires torchvision" not in quiet


def test_with_progress_the_loading_bar_goes_and_an_advisory_shows_once_not_per_run(tmp_path):
    first, second = runs(tmp_path, "on", "on").values()
    assert "Loading weights" not in first + second
    assert "tracking" in first  # our own bar still shows
    assert first.count("requires torchvision") == 1 and "requires torchvision" not in second
