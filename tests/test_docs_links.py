"""Every relative link of README.md and docs/*.md resolves in a clone: the file is in the repository
(not beside it, like ../shared), and a #heading anchor names a heading of the page it points to."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)


def links(text: str) -> list[str]:
    """Link targets outside code blocks and code spans."""
    return LINK.findall(CODE.sub("", FENCE.sub("", text)))


def anchors(page: Path) -> set[str]:
    """GitHub's anchors for the page's headings: lower case, punctuation dropped, spaces to hyphens,
    repeats numbered."""
    seen: dict[str, int] = {}
    found = set()
    for title in HEADING.findall(FENCE.sub("", page.read_text(encoding="utf-8"))):
        title = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", title).replace("`", "")
        slug = re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")
        found.add(slug if slug not in seen else f"{slug}-{seen[slug]}")
        seen[slug] = seen.get(slug, 0) + 1
    return found


def broken_links(page: Path) -> list[str]:
    broken = []
    for target in links(page.read_text(encoding="utf-8")):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # https:, mailto:: not a file of the clone
            continue
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        if ROOT not in resolved.parents and resolved != ROOT:
            broken.append(f"{target} (outside the repository)")
        elif not resolved.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            broken.append(f"{target} (no heading #{anchor} in {resolved.name})")
    return broken


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_resolves_in_a_clone(page):
    assert broken_links(page) == []


def test_the_readme_links_are_found():
    targets = links((ROOT / "README.md").read_text(encoding="utf-8"))
    assert "docs/ARCHITECTURE.md" in targets and "#detectors" in targets


def test_a_broken_link_is_caught(tmp_path, monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "A.md").write_text("# Top\n## Set up: `make`\n")
    page = tmp_path / "README.md"
    page.write_text("[a](docs/A.md) [b](docs/A.md#set-up-make) [c](#top-level) [d](../shared/DESIGN.md) "
                    "[e](docs/B.md) [f](https://example.org/x) `[g](nowhere.md)`\n# Top level\n"
                    "```\n[h](nowhere.md)\n```\n")
    assert broken_links(page) == ["../shared/DESIGN.md (outside the repository)", "docs/B.md (no such file)"]
    page.write_text("[x](docs/A.md#no-such-heading)\n")
    assert broken_links(page) == ["docs/A.md#no-such-heading (no heading #no-such-heading in A.md)"]
