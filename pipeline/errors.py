"""User-facing errors: each is one line that says what went wrong and how to fix it.

The CLI prints ``str(error)`` and exits with ``error.exit_code``; nothing else reaches the
user as a traceback. Library users catch :class:`PromptrackError`.
"""

from __future__ import annotations

import re


class PromptrackError(Exception):
    """Base class of every error meant for the user (one line, with the fix)."""

    exit_code = 2


class InputError(PromptrackError):
    """The input video, frame folder or stream cannot be used."""


class PromptError(PromptrackError):
    """The text prompt is empty or names nothing the detector knows."""


class OutputError(PromptrackError):
    """The output folder or a file in it cannot be written."""


class ModelNotFoundError(PromptrackError):
    """Model weights are not on disk and cannot be downloaded."""


class ConfigError(PromptrackError):
    """A config preset, file or override is invalid."""


class CodecError(PromptrackError):
    """A hardware video encoder or decoder asked for by name cannot be used on this machine."""


def display_path(path: object) -> str:
    """A path (or URL) as text that any terminal and JSON take: bytes that are not UTF-8 in a file
    name (held by Python as surrogates) are shown as ``\\xNN`` instead of raising on print."""
    text = str(path)
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


_URL_PASSWORD = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*):(?P<password>[^@\s/]*)@")


def mask_password(text: object) -> str:
    """Text with the password of every URL in it masked, for messages and files.

    >>> mask_password("cannot open rtsp://admin:s3cret@10.0.0.5:554/live")
    'cannot open rtsp://admin:***@10.0.0.5:554/live'
    """
    return _URL_PASSWORD.sub(r"\g<head>:***@", display_path(text))
