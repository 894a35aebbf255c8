"""Bad input files and faults while writing, without models: real files made in each test.

Sources: rotation metadata, mixed-size frame folders, variable frame rate, truncated and corrupt
files, file names that are not UTF-8. Outputs: a planted symbolic link, two writers of one name,
a SIGKILL over earlier outputs, a full disk, signals while files close.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import signal
import struct
import subprocess
import sys
import threading
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import supervision as sv

from conftest import moving_boxes_frames, tiny_disk_at, write_video
from promptrack.pipeline.errors import InputError, OutputError
from promptrack.pipeline.signals import interrupt_on_signals, shielded, stop_on_signals
from promptrack.pipeline.sinks import AnnotatedVideoSink, JsonSink, MotSink
from promptrack.pipeline.sources import FrameSource, SourceInfo, open_source

BACKENDS = ["auto", "pyav"]  # auto is decord where installed


def read_all(source) -> list[np.ndarray]:
    return [frame for _, frame in source]


def rotate_in_metadata(path: Path) -> Path:
    """Give an mp4 a 90-degree display matrix in its track header, as phones write portrait video."""
    data = bytearray(path.read_bytes())
    at = data.find(b"tkhd")
    assert data[at + 4] == 0  # version 0 header: the matrix sits 40 bytes after the version field
    matrix = at + 4 + 4 + 4 * 5 + 8 + 8
    struct.pack_into(">9i", data, matrix, 0, 0x10000, 0, -0x10000, 0, 0, 0, 0, 0x40000000)
    path.write_bytes(bytes(data))
    return path


def frames_with_corner(count: int = 6) -> list[np.ndarray]:
    frames = moving_boxes_frames(count, height=48, width=64)
    for frame in frames:
        frame[:8, :8] = (255, 255, 255)  # a white top-left corner: where it ends up tells the rotation
    return frames


@pytest.mark.parametrize("backend", BACKENDS)
def test_rotated_phone_video_comes_out_upright_at_its_display_size(backend, tmp_path):
    frames = frames_with_corner()
    video = rotate_in_metadata(write_video(tmp_path / "phone.mp4", frames))
    source = open_source(video, backend=backend)
    assert (source.info.width, source.info.height) == (48, 64)
    decoded = read_all(source)
    assert len(decoded) == len(frames)
    for got, original in zip(decoded, frames):
        assert got.shape == (64, 48, 3)
        # Turned clockwise: the white corner is now top-right.
        clockwise = np.abs(got.astype(int) - np.rot90(original, -1)).mean()
        counter = np.abs(got.astype(int) - np.rot90(original, 1)).mean()
        assert clockwise < 15 and clockwise < counter / 2
        assert got[:6, -6:].mean() > 200


def test_frame_folder_of_mixed_sizes_is_resized_to_the_first(tmp_path, caplog):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, (h, w) in enumerate([(40, 60), (80, 100), (40, 60), (30, 30)]):
        cv2.imwrite(str(folder / f"{i:03d}.png"), np.full((h, w, 3), 40 * i, np.uint8))
    with caplog.at_level(logging.WARNING, logger="promptrack"):
        decoded = read_all(open_source(folder))
    assert [f.shape for f in decoded] == [(40, 60, 3)] * 4
    assert int(decoded[1].mean()) == 40  # the content is kept, only the size changes
    assert sum("resized" in r.getMessage() for r in caplog.records) == 1  # warned once, not per frame


def write_vfr(path: Path, times: list[float]) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        for t in times:
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), int(t * 60) % 256, np.uint8), format="rgb24")
            frame.pts, frame.time_base = int(round(t * 1000)), Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.mark.parametrize("backend", BACKENDS)
def test_variable_frame_rate_times_are_the_presentation_timestamps(backend, tmp_path):
    times = [0.0, 0.1, 0.15, 0.9, 1.0, 1.05, 2.0, 2.02, 2.5, 3.0]
    source = open_source(write_vfr(tmp_path / "vfr.mp4", times), backend=backend)
    assert isinstance(source, FrameSource)
    indices = [index for index, _ in source]
    assert indices == list(range(len(times)))
    assert [source.frame_time(i) for i in indices] == pytest.approx(times, abs=1e-3)


def test_frame_time_of_a_constant_rate_file_is_index_over_fps(synthetic_video):
    source = open_source(synthetic_video, start=3)
    indices = [index for index, _ in source]
    assert [source.frame_time(i) for i in indices] == pytest.approx([i / 10.0 for i in indices], abs=1e-3)


def write_mkv(path: Path, count: int) -> Path:
    """A Matroska file: its index is at the front, so a cut-off copy still decodes up to the cut."""
    return write_video(path, moving_boxes_frames(count, height=48, width=64), fps=10, options={"g": "5"})


@pytest.mark.parametrize("backend", BACKENDS)
def test_truncated_file_ends_the_stream_at_the_cut_with_a_warning(backend, tmp_path, caplog):
    whole = write_mkv(tmp_path / "whole.mkv", 40)
    cut = tmp_path / "cut.mkv"
    data = whole.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    with caplog.at_level(logging.WARNING, logger="promptrack"):
        decoded = read_all(open_source(cut, backend=backend))
    assert 5 <= len(decoded) < 40
    assert all(f.shape == (48, 64, 3) for f in decoded)


@pytest.mark.parametrize("backend", BACKENDS)
def test_corrupt_bytes_mid_file_skip_frames_with_a_count(backend, tmp_path, caplog):
    video = write_video(tmp_path / "ok.mp4", moving_boxes_frames(40))
    data = bytearray(video.read_bytes())
    rng = np.random.default_rng(1)
    middle = len(data) // 3
    data[middle: middle + 600] = rng.integers(0, 256, 600, dtype=np.uint8).tobytes()
    broken = tmp_path / "corrupt.mp4"
    broken.write_bytes(bytes(data))
    source = open_source(broken, backend=backend)
    with caplog.at_level(logging.WARNING, logger="promptrack"):
        decoded = read_all(source)
    assert source.skipped >= 1 and 20 <= len(decoded) < 40
    assert any("skipped" in r.getMessage() for r in caplog.records)


def test_file_that_is_all_damage_stops_with_one_line(tmp_path):
    video = write_video(tmp_path / "ok.mp4", moving_boxes_frames(5))
    data = video.read_bytes()
    broken = tmp_path / "garbage.mp4"
    broken.write_bytes(data[:40] + os.urandom(len(data) - 40))
    with pytest.raises(InputError) as caught:
        read_all(open_source(broken))
    assert "\n" not in str(caught.value)


def test_names_that_are_not_utf8_open_and_show(tmp_path):
    name = os.fsdecode(b"caf\xe9 clip.mp4")  # Latin-1 bytes: held as surrogates by Python
    video = write_video(tmp_path / name, moving_boxes_frames(4))
    source = open_source(video)
    assert len(read_all(source)) == 4
    folder = tmp_path / os.fsdecode(b"fr\xe9mes")
    folder.mkdir()
    cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))[1].tofile(folder / os.fsdecode(b"\xff0.png"))
    assert len(read_all(open_source(folder))) == 1
    with pytest.raises(InputError) as caught:
        open_source(tmp_path / os.fsdecode(b"missing\xff.mp4"))
    str(caught.value).encode("utf-8")  # printable anywhere: no surrogates left
    assert "\\xff" in str(caught.value)


# ---- outputs ---------------------------------------------------------------------------------

INFO = SourceInfo("clip.mp4", 10.0, 32, 24, 3)


def detections(count: int = 1) -> sv.Detections:
    mask = np.zeros((count, 24, 32), bool)
    mask[:, 4:12, 4:20] = True
    d = sv.Detections(xyxy=np.tile([4.0, 4.0, 20.0, 12.0], (count, 1)), mask=mask,
                      confidence=np.full(count, 0.9, np.float32), class_id=np.zeros(count, int),
                      tracker_id=np.arange(1, count + 1))
    d.data["class_name"] = np.array(["car"] * count, dtype=object)
    d.metadata["keyframe"] = True
    return d


def open_sinks(folder: Path) -> list:
    return [JsonSink(folder / "clip.tracks.json", INFO, ["car"], {}, {}),
            AnnotatedVideoSink(folder / "clip.annotated.mp4", 10.0, 32, 24),
            MotSink(folder / "clip.mot.txt")]


def write_frames(sinks, count: int) -> None:
    frame = np.zeros((24, 32, 3), np.uint8)
    for index in range(count):
        for sink in sinks:
            sink.write(index, frame, detections())


def decoded_frames(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def check_outputs(folder: Path, frames: int) -> None:
    data = json.loads((folder / "clip.tracks.json").read_text())
    assert data["source"]["frames"] == len(data["frames"]) == frames
    assert decoded_frames(folder / "clip.annotated.mp4") == frames
    assert len((folder / "clip.mot.txt").read_text().splitlines()) == frames


def side_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_planted_symlinks_are_never_followed(tmp_path):
    out, victim = tmp_path / "out", tmp_path / "victim.txt"
    out.mkdir()
    victim.write_text("precious")
    # Links at every name an earlier version used for side files, and at the final names.
    for name in (".clip.tracks.json.frames.part", "clip.tracks.json.tmp", "clip.tracks.json",
                 "clip.annotated.mp4", "clip.mot.txt"):
        (out / name).symlink_to(victim)
    sinks = open_sinks(out)
    write_frames(sinks, 3)
    for sink in sinks:
        sink.close()
    assert victim.read_text() == "precious"
    for name in ("clip.tracks.json", "clip.annotated.mp4", "clip.mot.txt"):
        assert not (out / name).is_symlink()
    check_outputs(out, 3)


def test_live_json_lines_refuse_a_planted_symlink(tmp_path):
    """The live JSONL is written in place (readers tail it), so a link at its name is refused, not followed."""
    from promptrack.pipeline.live.sinks import JsonLinesSink

    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (tmp_path / "cam.tracks.jsonl").symlink_to(victim)
    with pytest.raises(OutputError, match="symbolic link"):
        JsonLinesSink(tmp_path / "cam.tracks.jsonl", fps=10.0)
    assert victim.read_text() == "precious"


def test_two_writers_of_one_name_do_not_collide_and_leave_no_side_file(tmp_path):
    first, second = open_sinks(tmp_path), open_sinks(tmp_path)
    write_frames(first, 2)
    write_frames(second, 3)
    for sink in first + second:
        sink.close()
    check_outputs(tmp_path, 3)  # the last to finish wins, whole
    assert side_files(tmp_path) == []


def test_two_cli_like_processes_into_one_folder(tmp_path):
    script = tmp_path / "writer.py"
    script.write_text(
        "import sys, numpy as np\n"
        "sys.path.insert(0, %r)\n"
        "from test_faults_files import open_sinks, write_frames\n"
        "from pathlib import Path\n"
        "sinks = open_sinks(Path(sys.argv[1]))\n"
        "write_frames(sinks, int(sys.argv[2]))\n"
        "[s.close() for s in sinks]\n" % str(Path(__file__).parent))
    out = tmp_path / "out"
    out.mkdir()
    procs = [subprocess.Popen([sys.executable, str(script), str(out), "4"]) for _ in range(2)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    check_outputs(out, 4)
    assert side_files(out) == []


def test_sigkill_keeps_the_earlier_outputs_and_the_next_run_sweeps_its_side_files(tmp_path):
    sinks = open_sinks(tmp_path)
    write_frames(sinks, 2)
    for sink in sinks:
        sink.close()
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    script = ("import os, signal, sys; sys.path.insert(0, %r)\n"
              "from pathlib import Path\nfrom test_faults_files import open_sinks, write_frames\n"
              "sinks = open_sinks(Path(%r)); write_frames(sinks, 5)\n"
              "[s._frames.file.flush() for s in sinks[:1]]\n"
              "os.kill(os.getpid(), signal.SIGKILL)\n" % (str(Path(__file__).parent), str(tmp_path)))
    proc = subprocess.run([sys.executable, "-c", script])
    assert proc.returncode == -signal.SIGKILL
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if not p.name.startswith(".")} == before
    assert len(side_files(tmp_path)) == 3  # what the killed run had in hand
    sinks = open_sinks(tmp_path)  # the next run removes them (their process is gone) ...
    write_frames(sinks, 3)
    for sink in sinks:
        sink.close()
    check_outputs(tmp_path, 3)
    assert side_files(tmp_path) == []  # ... and its own


@pytest.fixture
def tiny_disk(tmp_path):
    """A 96 KiB tmpfs (root only; the ENOSPC test below fakes the same without root)."""
    with tiny_disk_at(tmp_path / "disk", "96k") as mount:
        yield mount


def test_full_disk_stops_with_one_line_and_leaves_no_half_file(tiny_disk):
    (tiny_disk / "clip.tracks.json").write_text('{"earlier": true}')
    sinks = [JsonSink(tiny_disk / "clip.tracks.json", INFO, ["car"], {}, {}),
             AnnotatedVideoSink(tiny_disk / "clip.annotated.mp4", 10.0, 32, 24)]
    with pytest.raises(OutputError) as caught:
        write_frames(sinks, 100000)  # far more than fits
        for sink in sinks:
            sink.close()
    for sink in sinks:
        try:
            sink.close()
        except OutputError:
            pass
    assert "disk full" in str(caught.value) and "\n" not in str(caught.value)
    assert json.loads((tiny_disk / "clip.tracks.json").read_text()) == {"earlier": True}
    assert side_files(tiny_disk) == []
    video = tiny_disk / "clip.annotated.mp4"
    assert not video.exists() or decoded_frames(video) > 0


class _FullDisk:
    """A file object whose writes fail as on a full disk."""

    def __init__(self, file):
        self._file = file

    def write(self, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __getattr__(self, name):
        return getattr(self._file, name)


def test_enospc_while_writing_json_is_one_line_and_the_final_name_untouched(tmp_path):
    final = tmp_path / "clip.tracks.json"
    final.write_text('{"earlier": true}')
    sink = JsonSink(final, INFO, ["car"], {}, {})
    write_frames([sink], 2)
    sink._frames.file = _FullDisk(sink._frames.file)
    with pytest.raises(OutputError) as caught:
        write_frames([sink], 1)
    sink.close()
    assert str(caught.value).startswith("disk full while writing")
    assert json.loads(final.read_text()) == {"earlier": True}
    assert side_files(tmp_path) == []


# ---- signals ---------------------------------------------------------------------------------

@pytest.mark.usefixtures("stop_signals_handled")
def test_signals_inside_a_shield_are_delivered_after_it():
    stop = threading.Event()
    reached_end = False
    with pytest.raises(KeyboardInterrupt):
        with stop_on_signals(stop):
            with shielded():
                os.kill(os.getpid(), signal.SIGTERM)  # first: would set stop
                os.kill(os.getpid(), signal.SIGINT)  # second: would raise at once
                reached_end = True  # ... but the block runs to its end
    assert reached_end and stop.is_set()


@pytest.mark.usefixtures("stop_signals_handled")
def test_interrupt_on_signals_turns_sigterm_and_sighup_into_keyboard_interrupt():
    before = signal.getsignal(signal.SIGTERM)  # not always SIG_DFL: another library (Ray) may have set one
    for sig in (signal.SIGTERM, signal.SIGHUP):
        with pytest.raises(KeyboardInterrupt):
            with interrupt_on_signals():
                os.kill(os.getpid(), sig)
                signal.sigtimedwait([], 0.0) if hasattr(signal, "sigtimedwait") else None
    assert signal.getsignal(signal.SIGTERM) == before


def test_package_log_lines_are_one_readable_line_without_passwords(capsys):
    from promptrack.pipeline.logs import configure_logging

    configure_logging("track-video")
    try:
        logging.getLogger("promptrack.pipeline.live.capture").warning("lost rtsp://cam:hunter2@10.0.0.5/a\nmore")
    finally:
        logging.getLogger("promptrack").handlers.clear()
        logging.getLogger("promptrack").propagate = True
        logging.getLogger("promptrack").setLevel(logging.NOTSET)
    assert capsys.readouterr().err == "track-video: warning: lost rtsp://cam:***@10.0.0.5/a\n"


def test_an_ignored_sighup_stays_ignored(tmp_path):
    """Under nohup a closed terminal must not stop the run."""
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        stop = threading.Event()
        with interrupt_on_signals(), stop_on_signals(stop), shielded():
            os.kill(os.getpid(), signal.SIGHUP)
        assert not stop.is_set()
        assert signal.getsignal(signal.SIGHUP) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, previous)
