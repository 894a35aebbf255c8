"""Hardware video codecs with CPU fallback: the choice (pure, probes injected), the fallback on a
machine where NVENC/CUVID do not open, the named-decoder path, and the one-line error for a
hardware codec asked for by name."""

import logging
from pathlib import Path

import av
import numpy as np
import pytest
import supervision as sv

from conftest import missing, run_cli
from promptrack.pipeline import codecs
from promptrack.pipeline.codecs import CUVID, choose_decoder, choose_encoder
from promptrack.pipeline.config import load_config
from promptrack.pipeline.errors import CodecError, ConfigError
from promptrack.pipeline.live.outputs import LiveLayout
from promptrack.pipeline.outputs import open_sinks
from promptrack.pipeline.sources import PyAVSource, open_source


def never(name):
    raise AssertionError(f"probed {name} though the choice needs no probe")


class Probes:
    """Injected availability: which codecs exist and why each fails to open (None: it opens)."""

    def __init__(self, exist=(), fail=None):
        self.exist, self.fail, self.opened = set(exist), dict(fail or {}), []

    def exists(self, name):
        return name in self.exist

    def opens(self, name):
        self.opened.append(name)
        return self.fail.get(name)


def one_line(error):
    text = str(error)
    assert "\n" not in text
    return text


# -- the choice, as a pure function --------------------------------------------------------------

def test_auto_takes_nvenc_where_it_exists_and_opens_with_crf_as_constant_quality():
    probes = Probes(exist={"h264_nvenc"})
    encoder = choose_encoder("auto", 23, exists=probes.exists, opens=probes.opens, width=1920, height=1080)
    assert encoder.codec == "h264_nvenc" and encoder.hardware and encoder.passed_over is None
    assert encoder.options["rc"] == "vbr" and encoder.options["cq"] == "23" and encoder.options["b"] == "0"
    assert "crf" not in encoder.options  # NVENC has no CRF: an unknown option would be ignored, not applied
    assert probes.opened == ["h264_nvenc"]


@pytest.mark.parametrize("exist, fail, size, why", [
    ((), {}, (1280, 720), "no h264_nvenc encoder"),  # not compiled in: never opened
    ({"h264_nvenc"}, {"h264_nvenc": "Operation not permitted"}, (1280, 720), "Operation not permitted"),  # no GPU
    ({"h264_nvenc"}, {}, (4104, 2160), "larger than NVENC"),  # over NVENC's 4096 limit: never opened
])
def test_auto_falls_back_to_libx264_with_the_reason(exist, fail, size, why):
    probes = Probes(exist, fail)
    encoder = choose_encoder("auto", 18, exists=probes.exists, opens=probes.opens, width=size[0], height=size[1])
    assert encoder.codec == "libx264" and not encoder.hardware
    assert encoder.options == {"crf": "18", "preset": "veryfast"}
    assert why in encoder.passed_over
    assert probes.opened == (["h264_nvenc"] if fail else [])


def test_libx264_is_never_probed_and_explicit_nvenc_that_cannot_open_is_one_line():
    assert choose_encoder("libx264", 20, exists=never, opens=never).codec == "libx264"
    probes = Probes({"h264_nvenc"}, {"h264_nvenc": "Cannot load libcuda.so.1"})
    with pytest.raises(CodecError) as caught:
        choose_encoder("h264_nvenc", 20, exists=probes.exists, opens=probes.opens)
    text = one_line(caught.value)
    assert "libcuda" in text and "output.video_encoder=auto" in text
    with pytest.raises(CodecError):
        choose_encoder("h264_nvenc", 20, exists=Probes().exists, opens=never)  # not even compiled in
    assert caught.value.exit_code == 2


@pytest.mark.parametrize("stream, expect", [("h264", "h264_cuvid"), ("hevc", "hevc_cuvid"), ("vp9", None)])
def test_auto_decoder_takes_cuvid_for_h264_and_hevc_only(stream, expect):
    probes = Probes(exist=set(CUVID.values()))
    assert choose_decoder("auto", stream, exists=probes.exists, opens=probes.opens) == expect
    assert probes.opened == ([expect] if expect else [])


def test_decoder_fallback_and_errors():
    probes = Probes(set(CUVID.values()), {"h264_cuvid": "no CUDA device"})
    assert choose_decoder("auto", "h264", exists=probes.exists, opens=probes.opens) is None
    assert choose_decoder("cpu", "h264", exists=never, opens=never) is None
    for stream in ("h264", "vp9"):
        with pytest.raises(CodecError) as caught:
            choose_decoder("cuvid", stream, exists=probes.exists, opens=probes.opens, uri="clip.mp4")
        text = one_line(caught.value)
        assert "clip.mp4" in text and "input.video_decoder=auto" in text


def test_config_names_the_choices():
    config = load_config("default")
    assert (config.output.video_encoder, config.input.video_decoder) == ("auto", "auto")
    assert load_config("default", ["output.video_encoder=h264_nvenc"]).output.video_encoder == "h264_nvenc"
    with pytest.raises(ConfigError, match="output.video_encoder must be one of auto, libx264, h264_nvenc"):
        load_config("default", ["output.video_encoder=nvenc"])
    with pytest.raises(ConfigError, match="input.video_decoder must be one of auto, cpu, cuvid"):
        load_config("default", ["input.video_decoder=gpu"])


# -- the real probes and the fallback on this machine ---------------------------------------------

@pytest.fixture
def no_gpu_codecs(monkeypatch):
    """NVENC and CUVID compiled in but failing to open (a machine without an NVIDIA GPU), whatever this
    machine has; the once-per-process log memory is fresh."""
    monkeypatch.setattr(codecs, "_logged", set())
    monkeypatch.setattr(codecs, "codec_exists", lambda name, mode="w": True)
    monkeypatch.setattr(codecs, "encoder_open_error", lambda name, width=0, height=0: "no CUDA-capable device")
    monkeypatch.setattr("promptrack.pipeline.sources._decoder_open_error", lambda path, name: "no CUDA-capable device")


def info_lines(caplog, start):
    return [r.getMessage() for r in caplog.records
            if r.name == "promptrack.pipeline.codecs" and r.levelno == logging.INFO and r.getMessage().startswith(start)]


def test_real_probe_gives_a_reason_where_nvenc_cannot_open():
    if Path("/dev/nvidiactl").exists():
        pytest.skip("an NVIDIA device is present: NVENC may open here")
    if not codecs.codec_exists("h264_nvenc"):
        missing("this PyAV has no h264_nvenc (the PyAV wheel the project installs has it)")
    codecs.encoder_open_error.cache_clear()
    why = codecs.encoder_open_error("h264_nvenc", 160, 120)
    assert isinstance(why, str) and why  # compiled in, does not open: exactly the case auto must survive


def test_auto_encoder_falls_back_once_for_file_and_live_outputs(no_gpu_codecs, synthetic_video, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="promptrack")
    config = load_config("default", ["output.json=false", "live.segment_seconds=1.0"])
    info = open_source(synthetic_video).info
    frame = np.zeros((info.height, info.width, 3), np.uint8)
    outputs = open_sinks(config, tmp_path, info, ["car"], models={})
    live = open_sinks(config, tmp_path, info, ["car"], models={},
                      layout=LiveLayout(stamps=lambda i: None, clock=lambda i: i * 0.5), name="cam")
    for sinks in (outputs, live):
        for index in range(4):
            for sink in sinks.sinks:
                sink.write(index, frame, sv.Detections.empty())
        sinks.close()
    lines = info_lines(caplog, "video encoder")
    assert lines == ["video encoder: libx264 (CPU; h264_nvenc not used: it does not open (no CUDA-capable device; "
                     "it needs an NVIDIA GPU and driver))"]  # once, for every sink and segment
    for path, frames in [(outputs.paths["video"], 4), (tmp_path / "cam.000.mp4", 2), (tmp_path / "cam.001.mp4", 2)]:
        with av.open(str(path)) as container:
            assert container.streams.video[0].codec_context.name == "h264"
            assert sum(1 for _ in container.decode(video=0)) == frames


def test_auto_decoder_falls_back_to_the_cpu_with_the_same_frames(no_gpu_codecs, synthetic_video, caplog):
    caplog.set_level(logging.INFO, logger="promptrack")
    source = open_source(synthetic_video, decoder="auto", backend="pyav")
    assert isinstance(source, PyAVSource) and source.decoder is None
    assert info_lines(caplog, "video decoder") == ["video decoder: FFmpeg's h264 (CPU)"]
    with pytest.raises(CodecError, match="input.video_decoder=auto"):
        open_source(synthetic_video, decoder="cuvid")


def test_auto_decoder_takes_cuvid_where_it_opens(monkeypatch, synthetic_video):
    monkeypatch.setattr(codecs, "codec_exists", lambda name, mode="w": True)
    monkeypatch.setattr("promptrack.pipeline.sources._decoder_open_error", lambda path, name: None)
    source = open_source(synthetic_video, decoder="auto")
    assert isinstance(source, PyAVSource) and source.decoder == "h264_cuvid"


def test_a_decoder_chosen_by_name_gives_the_same_frames_and_times(synthetic_video):
    """The CUVID path (a decoder opened by name on the stream's extradata) run with FFmpeg's software
    h264 decoder: frames, order and timestamps must match the stream's own decoder exactly."""
    plain = open_source(synthetic_video, backend="pyav")
    named = PyAVSource(plain.info, decoder="h264")
    a, b = list(plain), list(named)
    assert len(a) == len(b) == 24
    for (i, x), (j, y) in zip(a, b):
        assert i == j and x.dtype == y.dtype == np.uint8 and x.shape == y.shape and np.array_equal(x, y)
    assert [plain.frame_time(i) for i in range(24)] == [named.frame_time(i) for i in range(24)]


# -- through the command line ---------------------------------------------------------------------

def test_cli_explicit_hardware_codec_that_cannot_open_exits_2_in_one_line(synthetic_video, hub_env, tmp_path):
    if codecs.encoder_open_error("h264_nvenc", 160, 120) is None:
        pytest.skip("NVENC opens on this machine")
    # An empty offline hub: had the models been loaded first, the error would be about them.
    env = {**hub_env, "HF_HOME": str(tmp_path / "empty_hub")}
    out = tmp_path / "out"
    common = [str(synthetic_video), "--prompt", "car", "-o", str(out), "--quiet",
              "--set", "tracker.image_size=256", "--max-frames", "2"]
    for option, fix in [("output.video_encoder=h264_nvenc", "output.video_encoder=auto"),
                        ("input.video_decoder=cuvid", "input.video_decoder=auto")]:
        result = run_cli([*common, "--set", option], env)
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and fix in lines[0] and "Traceback" not in result.stderr
    assert not out.exists() or not list(out.iterdir())  # no video, and no JSON of a run that never started
