"""Which FFmpeg codec writes and reads the videos: NVIDIA hardware (NVENC, CUVID) where it exists and
opens, else the software one (libx264, FFmpeg's own decoders).

A codec compiled into PyAV's FFmpeg may still not open: NVENC and CUVID need an NVIDIA GPU and its
driver at run time. So ``auto`` takes the hardware codec only when it is in the build *and* opens,
and falls back to software otherwise (one INFO line says which codec is used); asking for the
hardware codec by name when it cannot open is a one-line :class:`CodecError`.

The choice itself is a pure function of what exists and what opens (:func:`choose_encoder`,
:func:`choose_decoder`); :func:`pick_encoder` and :func:`pick_decoder` feed it the real probes.

Example:
    >>> encoder = choose_encoder("auto", crf=20, exists=lambda name: False, opens=lambda name: None)
    >>> encoder.codec, encoder.options["crf"]
    ('libx264', '20')
    >>> nvenc = choose_encoder("auto", crf=20, exists=lambda name: True, opens=lambda name: None)
    >>> nvenc.codec, nvenc.options["rc"], nvenc.options["cq"]
    ('h264_nvenc', 'vbr', '20')
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache
from typing import Callable, Optional

from .errors import CodecError, display_path

log = logging.getLogger(__name__)

ENCODERS = ("auto", "libx264", "h264_nvenc")  # output.video_encoder
DECODERS = ("auto", "cpu", "cuvid")  # input.video_decoder
SOFTWARE_ENCODER = "libx264"
HARDWARE_ENCODER = "h264_nvenc"
CUVID = {"h264": "h264_cuvid", "hevc": "hevc_cuvid"}  # stream codec -> NVDEC decoder
NVENC_MAX_SIDE = 4096  # NVENC's H.264 limit on either side (in pixels)

Exists = Callable[[str], bool]  # is this codec compiled into PyAV's FFmpeg?
Opens = Callable[[str], Optional[str]]  # None when it opens, else why not (one line)


@dataclass(frozen=True)
class VideoEncoder:
    """An H.264 encoder and its options (PyAV ``stream.options``), ready for ``add_stream``."""

    codec: str
    options: dict = field(default_factory=dict)
    passed_over: str | None = None  # with ``auto`` on the CPU: why NVENC was not used

    @property
    def hardware(self) -> bool:
        return self.codec != SOFTWARE_ENCODER


def encoder_options(codec: str, crf: int) -> dict[str, str]:
    """Options giving `codec` the look of libx264 at `crf`.

    libx264: constant rate factor, preset ``veryfast``. NVENC has no CRF; its constant-quality mode
    is ``rc=vbr`` with a ``cq`` target on the same 0-51 quantiser scale and no bitrate cap
    (``b=0``), preset ``p4`` (NVENC's balanced default) tuned for quality (``tune=hq``).
    """
    if codec == HARDWARE_ENCODER:
        return {"rc": "vbr", "cq": str(crf), "b": "0", "preset": "p4", "tune": "hq"}
    return {"crf": str(crf), "preset": "veryfast"}


def choose_encoder(wanted: str, crf: int, *, exists: Exists, opens: Opens, width: int = 0,
                   height: int = 0) -> VideoEncoder:
    """The encoder for ``output.video_encoder=wanted`` (a pure choice; the probes are given).

    ``auto``: NVENC when it `exists`, `opens` and the frame fits its limit, else libx264.
    ``h264_nvenc`` that cannot be used raises :class:`CodecError`; ``libx264`` is never probed.
    """
    if wanted not in ENCODERS:
        raise CodecError(f"unknown output.video_encoder {wanted!r}: use one of {', '.join(ENCODERS)}")
    if wanted == SOFTWARE_ENCODER:
        return VideoEncoder(SOFTWARE_ENCODER, encoder_options(SOFTWARE_ENCODER, crf))
    why = _nvenc_unusable(exists, opens, width, height)
    if why is None:
        return VideoEncoder(HARDWARE_ENCODER, encoder_options(HARDWARE_ENCODER, crf))
    if wanted == HARDWARE_ENCODER:
        raise CodecError(f"output.video_encoder=h264_nvenc cannot be used: {why}; "
                         "set output.video_encoder=auto (or libx264) to encode on the CPU")
    return VideoEncoder(SOFTWARE_ENCODER, encoder_options(SOFTWARE_ENCODER, crf), passed_over=why)


def _nvenc_unusable(exists: Exists, opens: Opens, width: int, height: int) -> str | None:
    if not exists(HARDWARE_ENCODER):
        return "this PyAV's FFmpeg has no h264_nvenc encoder"
    if max(width, height) > NVENC_MAX_SIDE:
        return f"{width}x{height} frames are larger than NVENC's {NVENC_MAX_SIDE} pixels"
    why = opens(HARDWARE_ENCODER)
    return None if why is None else f"it does not open ({why}; it needs an NVIDIA GPU and driver)"


def choose_decoder(wanted: str, stream_codec: str, *, exists: Exists, opens: Opens,
                   uri: str = "the video") -> str | None:
    """The decoder for ``input.video_decoder=wanted`` on a `stream_codec` stream ("h264", "hevc"...):
    a CUVID decoder's name, or None for FFmpeg's software decoder (a pure choice; the probes are given).

    ``auto``: CUVID for H.264/HEVC when it `exists` and `opens`, else software. ``cuvid`` that cannot
    be used raises :class:`CodecError`; ``cpu`` is never probed.
    """
    if wanted not in DECODERS:
        raise CodecError(f"unknown input.video_decoder {wanted!r}: use one of {', '.join(DECODERS)}")
    if wanted == "cpu":
        return None
    name = CUVID.get(stream_codec)
    if name is None:
        why = f"CUVID decodes H.264 and HEVC here, not {stream_codec or 'this codec'}"
    elif not exists(name):
        why = f"this PyAV's FFmpeg has no {name} decoder"
    else:
        opened = opens(name)
        why = None if opened is None else f"{name} does not open ({opened}; it needs an NVIDIA GPU and driver)"
    if why is None:
        return name
    if wanted == "cuvid":
        raise CodecError(f"input.video_decoder=cuvid cannot decode {display_path(uri)}: {why}; "
                         "set input.video_decoder=auto (or cpu) to decode on the CPU")
    return None


# -- the real probes ------------------------------------------------------------------------------

def codec_exists(name: str, mode: str = "w") -> bool:
    """Whether PyAV's FFmpeg was built with codec `name` (``mode`` "w": encoder, "r": decoder)."""
    import av

    try:
        av.codec.Codec(name, mode)
    except Exception:  # noqa: BLE001 - UnknownCodecError and friends: it is not there
        return False
    return True


@lru_cache(maxsize=None)
def encoder_open_error(name: str, width: int = 256, height: int = 256) -> str | None:
    """None when encoder `name` opens for `width` x `height` yuv420p frames, else why not (cached:
    a GPU does not appear or vanish during a run, and opening NVENC costs a CUDA context)."""
    import av

    try:
        context = av.CodecContext.create(name, "w")
        context.width, context.height = width + width % 2, height + height % 2
        context.pix_fmt = "yuv420p"
        context.time_base = Fraction(1, 25)
        context.open()  # freed with the object: PyAV contexts have no close()
    except Exception as exc:  # noqa: BLE001 - any failure to open means "not usable here"
        return _reason(exc)
    return None


def pick_encoder(wanted: str, crf: int, width: int = 256, height: int = 256) -> VideoEncoder:
    """:func:`choose_encoder` with the real probes; logs the encoder used once per process."""
    encoder = choose_encoder(wanted, crf, exists=codec_exists, width=width, height=height,
                             opens=lambda name: encoder_open_error(name, width, height))
    if encoder.passed_over:
        _log_once("video encoder: libx264 (CPU; h264_nvenc not used: %s)", encoder.passed_over)
    else:
        _log_once("video encoder: %s (%s)", encoder.codec, "NVIDIA GPU" if encoder.hardware else "CPU")
    return encoder


def pick_decoder(wanted: str, stream_codec: str, opens: Opens, uri: str = "the video") -> str | None:
    """:func:`choose_decoder` with the real "exists" probe and the source's `opens` probe (it opens
    the decoder on the file's own stream); logs the decoder used once per process."""
    name = choose_decoder(wanted, stream_codec, exists=lambda codec: codec_exists(codec, "r"), opens=opens, uri=uri)
    if wanted != "cpu":
        _log_once("video decoder: %s", f"{name} (NVIDIA GPU)" if name else f"FFmpeg's {stream_codec} (CPU)")
    return name


_logged: set[str] = set()


def _log_once(message: str, *args: object) -> None:
    text = message % args
    if text not in _logged:
        _logged.add(text)
        log.info(text)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:160] if text else type(exc).__name__
