"""Structured configuration: dataclasses, YAML presets in ``configs/``, dotted overrides.

A config is resolved in layers: the dataclass defaults, then a preset (``default``, ``fast``,
``accurate`` or a YAML path), then ``key=value`` overrides (``--set tracker.image_size=512``),
then the CLI's named options. Unknown keys are an error, so a typo never passes silently.

Example:
    >>> cfg = load_config("fast", overrides=["tracker.image_size=256", "detect_every=5"])
    >>> cfg.tracker.image_size, cfg.detect_every
    (256, 5)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from .codecs import DECODERS, ENCODERS
from .errors import ConfigError, display_path

# The presets ship inside the package (``configs/`` is mapped to ``promptrack.configs``), so they are
# found the same way from a checkout, an editable install and a wheel.
PRESETS = files("promptrack.configs")


@dataclass
class DetectorConfig:
    name: str = "grounding-dino"  # see `track-video --list-detectors`: grounding-dino | owlv2 | yolox | dino-x ...
    model: Optional[str] = None  # hub id or local path; None = the detector's default
    box_threshold: float = 0.35  # minimum box score kept
    text_threshold: float = 0.25  # minimum token score for a phrase (Grounding DINO family)
    nms_iou: float = 0.5  # per-class NMS IoU (the cloud API's iou_threshold)
    token: Optional[str] = None  # DeepDataSpace API token (cloud detectors); None = $DDS_API_TOKEN; never written out
    api_url: str = "https://api.deepdataspace.com"  # DeepDataSpace API root (cloud detectors)
    timeout: float = 10.0  # seconds per cloud API request
    retries: int = 3  # cloud: retries on 429 / 5xx / timeouts, exponential backoff
    image_max_side: int = 1536  # cloud: keyframes are downscaled to this longest side before upload


@dataclass
class TrackerConfig:
    sam2: str = "tiny"  # tiny | small | base_plus | large | path to a .pt checkpoint
    image_size: int = 1024  # SAM 2 input size (square); smaller is faster, coarser
    dtype: str = "auto"  # auto (bf16 on CUDA, fp32 on CPU) | float32 | bfloat16
    compile: str = "auto"  # auto (CUDA: compiled + CUDA graph per bucket; CPU: off) | off | on (torch.compile, fullgraph)
    max_cond_frames: int = 4  # prompted frames kept per object (the nearest ones)
    fill_hole_area: int = 8  # fill holes / drop specks up to this many cells of SAM 2's 256x256 low-res mask (0: off)
    lookback: int = 8  # offline: frames held to track a new object back over them and show it once confirmed (0: off)


@dataclass
class AssociationConfig:
    match_iou: float = 0.3  # min mask-vs-box IoU for a detection to match a track
    birth_score: float = 0.4  # min detector score to start a new track
    birth_max_overlap: float = 0.5  # a box covered more than this by live masks is no birth
    reprompt_iou: float = 0.5  # matched but IoU below this: re-prompt the track with the box
    min_mask_area: int = 16  # masks smaller than this (pixels) count as empty
    lost_ttl: int = 150  # frames a lost track may be re-found before it ends
    match_cover: float = 0.8  # ... or a box holding this share of the mask matches too (half-segmented objects)
    confirm_hits: int = 2  # detections that confirm a new track (1: no tentative state)
    confirm_window: int = 30  # frames a tentative track may wait for them before it is dropped
    revive_score: float = 0.4  # min detector score to give a lost id back
    revive_min: float = 0.35  # min plausibility (position x size x label, 0..1) to give a lost id back
    revive_appearance: float = 0.7  # min appearance cosine to give a lost id back (when features exist)
    stale_keyframes: int = 2  # keyframes without a match after which a track's id may be claimed (0: off)
    merge_iou: float = 0.6  # two masks overlapping this much ...
    merge_frames: int = 5  # ... for this many frames in a row are merged (the older id stays)
    detect_on_lost: bool = True  # extra detection when a track's mask vanishes
    detect_on_count_jump: int = 2  # extra detection when the mask count jumps by this much (0: off)
    detect_min_gap: int = 3  # frames between an extra detection and the previous one


@dataclass
class InputConfig:
    video_decoder: str = "auto"  # auto (NVIDIA CUVID for H.264/HEVC where it opens, else CPU) | cpu | cuvid


@dataclass
class OutputConfig:
    video: bool = True  # <stem>.annotated.mp4
    json: bool = True  # <stem>.tracks.json
    mot: bool = False  # <stem>.mot.txt (MOTChallenge)
    crf: int = 20  # H.264 quality (lower is better); NVENC gets the same constant-quality target (cq)
    video_encoder: str = "auto"  # auto (h264_nvenc where it opens, else libx264) | libx264 | h264_nvenc
    mask_opacity: float = 0.45


@dataclass
class LiveConfig:
    """Live streams (RTSP, camera, any URL PyAV opens): outputs, live view, reconnects."""

    segment_seconds: float = 60.0  # the annotated video is cut into playable mp4 segments this long
    keep_segments: int = 0  # keep only the newest N segments on disk (0: keep all)
    view_port: int = 0  # MJPEG live view on http://127.0.0.1:PORT/ (0: off)
    view_host: str = "127.0.0.1"  # the view's bind address (0.0.0.0 shares it on the network)
    view_fps: float = 10.0  # most frames per second sent to the view (JPEG encoding costs CPU)
    view_quality: int = 80  # JPEG quality of the view
    stats_every: float = 5.0  # seconds between stats lines on stderr (0: off)
    latency_window: int = 256  # frames in the latency p50/p95 window (fixed size: memory stays flat)
    reconnect_initial: float = 0.5  # seconds before the first reconnect; doubles on each failure ...
    reconnect_max: float = 10.0  # ... up to this
    stall_timeout: float = 5.0  # no data for this many seconds: the stream is stalled and is reopened
    open_timeout: float = 10.0  # seconds to open the stream (first connection: then a one-line error)
    rtsp_transport: str = "udp"  # udp | tcp | http (RTSP only)
    ffmpeg_options: Dict[str, str] = field(default_factory=dict)  # extra demuxer options, e.g. {probesize: "32768"}


@dataclass
class Config:
    device: str = "auto"  # auto | cpu | cuda
    detect_every: int = 10  # run the detector every N frames (keyframes)
    start: int = 0  # first frame to process
    end: Optional[int] = None  # stop before this frame
    max_frames: Optional[int] = None  # process at most this many frames
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    input: InputConfig = field(default_factory=InputConfig)
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    association: AssociationConfig = field(default_factory=AssociationConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    live: LiveConfig = field(default_factory=LiveConfig)


def preset_names() -> list[str]:
    """Names of the presets shipped in ``configs/``."""
    return sorted(p.name[: -len(".yaml")] for p in PRESETS.iterdir() if p.name.endswith(".yaml"))


def _preset_path(preset: str):
    """A ``.yaml`` file given by the user, or a shipped preset (a package resource)."""
    path = Path(preset)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise ConfigError(f"config file not found: {display_path(preset)}")
        return path
    resource = PRESETS / f"{preset}.yaml"
    if not resource.is_file():
        raise ConfigError(
            f"unknown config preset {preset!r}: use one of {', '.join(preset_names())} or a .yaml path"
        )
    return resource


def load_config(
    preset: str | None = "default",
    overrides: Sequence[str] = (),
    **values: Any,
) -> Config:
    """Build a :class:`Config` from a preset, dotted ``key=value`` overrides and keyword values.

    Keyword values use dotted keys too, written with ``__``: ``tracker__image_size=512``.
    ``None`` keyword values are ignored, so CLI options left unset keep the preset's value.
    """
    try:
        cfg = OmegaConf.structured(Config)
        if preset:
            path = _preset_path(preset)
            try:
                cfg = OmegaConf.merge(cfg, _load_yaml(path))
            except OmegaConfBaseException as exc:
                raise ConfigError(f"config file {display_path(path)}: {str(exc).splitlines()[0]}; "
                                  "see configs/default.yaml for the keys") from None
        for item in overrides:
            if "=" not in item:
                raise ConfigError(f"bad override {item!r}: write key=value, e.g. tracker.image_size=512")
            key, value = item.split("=", 1)
            _check_key(cfg, key.strip())
            OmegaConf.update(cfg, key.strip(), OmegaConf.create({"v": value})["v"] if value else None, merge=True)
        for name, value in values.items():
            if value is None:
                continue
            key = name.replace("__", ".")
            _check_key(cfg, key)
            OmegaConf.update(cfg, key, value, merge=True)
        config = OmegaConf.to_object(cfg)
    except OmegaConfBaseException as exc:
        raise ConfigError(f"invalid config: {str(exc).splitlines()[0]}") from None
    _validate(config)
    return config


def _load_yaml(path: Any) -> Any:
    """A config file, read with YAML's safe loader (no tags that build objects); one line on any problem."""
    import yaml

    try:
        with path.open("r", encoding="utf-8") as text:  # a Path or a package resource alike
            data = OmegaConf.load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        where = f" at{where}" if where else ""
        raise ConfigError(f"config file {display_path(path)} is not valid YAML ({problem}{where}): "
                          "fix it or start from configs/default.yaml") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(f"config file {display_path(path)} is not a YAML text file ({type(exc).__name__}): "
                          "start from configs/default.yaml") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {display_path(path)}: {exc.strerror or exc}") from None
    if not OmegaConf.is_dict(data):
        raise ConfigError(f"config file {display_path(path)} must hold keys and values (like configs/default.yaml), "
                          "not a list or a single value")
    return data


def _check_key(cfg: Any, key: str) -> None:
    node = cfg
    for part in key.split("."):
        if not OmegaConf.is_config(node) or part not in node:
            raise ConfigError(f"unknown config key {key!r}: see configs/default.yaml for the keys")
        node = node[part]


def _validate(config: Config) -> None:
    if config.detect_every < 1:
        raise ConfigError("detect_every must be at least 1")
    if config.start < 0:
        raise ConfigError("--start must be 0 or more")
    if config.tracker.image_size < 64 or config.tracker.image_size % 16:
        raise ConfigError("tracker.image_size must be a multiple of 16, at least 64 (e.g. 512, 1024)")
    if config.device not in ("auto", "cpu", "cuda") and not config.device.startswith("cuda:"):
        raise ConfigError(f"unknown device {config.device!r}: use auto, cpu or cuda")
    if config.tracker.dtype not in ("auto", "float32", "bfloat16"):
        raise ConfigError("tracker.dtype must be auto, float32 or bfloat16")
    if config.output.video_encoder not in ENCODERS:
        raise ConfigError(f"output.video_encoder must be one of {', '.join(ENCODERS)}")
    if config.input.video_decoder not in DECODERS:
        raise ConfigError(f"input.video_decoder must be one of {', '.join(DECODERS)}")
    _validate_live(config.live)


def _validate_live(live: LiveConfig) -> None:
    if live.segment_seconds <= 0:
        raise ConfigError("live.segment_seconds must be more than 0, e.g. 60")
    if not 0 <= live.view_port <= 65535:
        raise ConfigError("live.view_port must be a TCP port (1-65535), or 0 to turn the live view off")
    if live.rtsp_transport not in ("udp", "tcp", "http", "udp_multicast"):
        raise ConfigError("live.rtsp_transport must be udp, tcp or http")
    if live.reconnect_initial <= 0 or live.reconnect_max < live.reconnect_initial:
        raise ConfigError("live.reconnect_initial must be > 0 and at most live.reconnect_max")
    if live.stall_timeout <= 0 or live.open_timeout <= 0:
        raise ConfigError("live.stall_timeout and live.open_timeout must be more than 0 seconds")
    if live.latency_window < 1 or live.view_fps <= 0:
        raise ConfigError("live.latency_window must be at least 1 and live.view_fps more than 0")


def config_to_dict(config: Config) -> dict:
    """The resolved config as plain data (for the JSON output); secrets (``detector.token``) are redacted."""
    data = OmegaConf.to_container(OmegaConf.structured(config), resolve=True)
    if data.get("detector", {}).get("token"):
        data["detector"]["token"] = "<redacted>"  # an API token never reaches an output file
    return data
