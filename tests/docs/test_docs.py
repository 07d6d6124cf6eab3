"""The README is a front door and the documentation stays inside the repository.

    .venv/bin/python -m pytest tests/docs -q

Checks: README.md is under 8 KB and opens with the two commands (demo, tests); every markdown link in
README.md and docs/**/*.md is relative and resolves to a file or directory of the repository (anchors
ignored); no http(s) URL is a link or a bare, auto-linked URL outside code.
"""

from __future__ import annotations

import re
from collections.abc import Set
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
README_LIMIT = 8192  # bytes: a front door read in five minutes
FIRST_COMMANDS = ("scripts/demo.sh", "scripts/test.sh")
# Pages other parts of the build write: configuration.md is generated from the key declarations, and the
# test-tier page comes with the tier markers; a branch without them still links to where they will be.
GENERATED_PAGES = {ROOT / "docs" / "configuration.md", ROOT / "docs" / "testing.md"}

_FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.MULTILINE | re.DOTALL)
_INDENTED_CODE = re.compile(r"^(?: {4}|\t).*$", re.MULTILINE)
_CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1", re.DOTALL)
_INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+[\"'(].*?[\"')])?\s*\)")
_REFERENCE_DEF = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.MULTILINE)
_AUTOLINK = re.compile(r"<([a-zA-Z][a-zA-Z0-9+.-]*:[^>\s]*)>")
_BARE_URL = re.compile(r"\bhttps?://\S+", re.IGNORECASE)


def prose(markdown: str) -> str:
    """``markdown`` without fenced blocks, indented code and code spans: the text a renderer links in."""
    text = _FENCE.sub("", markdown)
    text = _INDENTED_CODE.sub("", text)
    return _CODE_SPAN.sub("", text)


def link_targets(markdown: str) -> list[str]:
    """Targets of inline links, images, reference definitions and autolinks, outside code."""
    text = prose(markdown)
    return _INLINE_LINK.findall(text) + _REFERENCE_DEF.findall(text) + _AUTOLINK.findall(text)


def link_problems(page: Path, root: Path = ROOT, generated: Set[Path] = frozenset()) -> list[str]:
    """Why each link of ``page`` is not allowed (empty when every one is relative and resolves in ``root``)."""
    markdown = page.read_text(encoding="utf-8")
    unlinked = prose(markdown)
    for pattern in (_INLINE_LINK, _REFERENCE_DEF, _AUTOLINK):
        unlinked = pattern.sub("", unlinked)
    problems = [f"bare URL {url}" for url in _BARE_URL.findall(unlinked)]
    for target in link_targets(markdown):
        path = target.split("#", 1)[0]
        if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", target) or target.startswith("//"):
            problems.append(f"link outside the repository: {target}")
        elif path.startswith("/"):
            problems.append(f"absolute path: {target}")
        elif path:
            resolved = (page.parent / path).resolve()
            if not resolved.is_relative_to(root):
                problems.append(f"link leaves the repository: {target}")
            elif not resolved.exists() and resolved not in generated:
                problems.append(f"link to a missing file: {target}")
    return problems


def documentation_pages() -> list[Path]:
    return [README, *sorted((ROOT / "docs").rglob("*.md"))]


def test_readme_is_under_8_kb() -> None:
    assert README.stat().st_size < README_LIMIT


def test_readme_opens_with_the_two_commands() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("# ")
    content = [line for line in lines[1:] if line.strip()]
    assert content[0] == "```bash"
    commands = [line.split()[0] for line in content[1:3]]
    assert tuple(commands) == FIRST_COMMANDS
    assert content[3] == "```"


def test_docs_directory_has_an_index_and_dated_results() -> None:
    assert (ROOT / "docs" / "README.md").is_file()
    results = (ROOT / "docs" / "results" / "README.md").read_text(encoding="utf-8")
    assert re.search(r"\b20\d\d-\d\d-\d\d\b", results)


@pytest.mark.parametrize("page", documentation_pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_link_is_relative_and_resolves(page: Path) -> None:
    assert link_problems(page, generated=GENERATED_PAGES) == []


def test_link_check_refuses_what_it_should(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "there.md").write_text("# there\n")
    page = tmp_path / "docs" / "page.md"
    page.write_text(
        "[ok](there.md#a-section) [anchor](#local) `[code](http://in-a-span)` and\n"
        "```\n[fenced](https://in-a-block)\n```\n"
        "[web](https://example.org) [missing](gone.md) [up](../../elsewhere.md) [abs](/etc/passwd)\n"
        "<https://auto.example> see http://bare.example too\n"
        "[ref]: http://ref.example\n"
    )
    problems = link_problems(page, root=tmp_path)
    assert problems == [
        "bare URL http://bare.example",
        "link outside the repository: https://example.org",
        "link to a missing file: gone.md",
        "link leaves the repository: ../../elsewhere.md",
        "absolute path: /etc/passwd",
        "link outside the repository: http://ref.example",
        "link outside the repository: https://auto.example",
    ]


def test_generated_pages_may_be_absent(tmp_path: Path) -> None:
    page = tmp_path / "README.md"
    page.write_text("[config](docs/configuration.md)\n")
    assert link_problems(page, root=tmp_path) == ["link to a missing file: docs/configuration.md"]
    assert link_problems(page, root=tmp_path, generated={tmp_path / "docs" / "configuration.md"}) == []
