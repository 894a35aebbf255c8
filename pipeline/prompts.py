"""Parse a text prompt into the list of phrases the detector looks for.

Users write prompts the way Grounding DINO demos do ("person . car", "person.car.") or as a
plain list ("person, car"). All forms give the same phrases: lower-case, stripped, de-duplicated,
in order of first appearance.

Example:
    >>> parse_prompt("Person . car.")
    ['person', 'car']
    >>> parse_prompt("person, red car , person")
    ['person', 'red car']
    >>> grounding_text(["person", "red car"])
    'person . red car .'
"""

from __future__ import annotations

import re
from typing import Sequence

from .errors import PromptError

_SEPARATORS = re.compile(r"[.,;\n]")


def parse_prompt(prompt: str | Sequence[str]) -> list[str]:
    """Split a prompt on '.', ',' or ';' into unique lower-case phrases.

    A list of strings is accepted too (each item may itself hold separators).
    Raises :class:`PromptError` when no phrase is left.
    """
    parts = [prompt] if isinstance(prompt, str) else list(prompt)
    phrases: list[str] = []
    for part in parts:
        for raw in _SEPARATORS.split(str(part)):
            phrase = " ".join(raw.split()).lower()
            if phrase and phrase not in phrases:
                phrases.append(phrase)
    if not phrases:
        raise PromptError(
            'empty prompt: name what to track, e.g. --prompt "person . car"'
        )
    return phrases


def grounding_text(phrases: Sequence[str]) -> str:
    """The text form Grounding DINO was trained on: phrases joined by ' . ', ending in ' .'."""
    return " . ".join(phrases) + " ."
