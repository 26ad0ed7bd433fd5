"""Documentation pages of the app, written in Markdown in the repository's `docs/` and shown
as HTML pages (`/docs/{name}`), so that a page of the console can link them.

Rendering is safe by construction: markdown-it in CommonMark mode with raw HTML turned off
(an HTML tag in the source is shown as text, escaped), its link check refusing
`javascript:`/`data:` addresses, and no inline script or style, so the page lives under the
site's Content-Security-Policy. Links to other files of the repository (`adr/0012-….md`)
mean nothing in the app: they are shown as their text.

The documents are read from the source tree, or, in the container image, where its
Dockerfile puts them (`/usr/share/doc/jalon`, beside the licence).
"""

from __future__ import annotations

import re
import sys
from functools import cache
from pathlib import Path

from markdown_it import MarkdownIt
from markdown_it.token import Token
from markupsafe import Markup

#: The documents served, by the name in their address.
DOCUMENTS: dict[str, str] = {"webhooks": "webhooks.md"}
#: Where the documents are looked for, in order.
DOCUMENT_DIRS = (
    Path(__file__).resolve().parents[1] / "docs",
    Path(sys.prefix) / "share" / "doc" / "jalon",
    Path("/usr/share/doc/jalon"),
)
_ABSOLUTE = re.compile(r"^(?:[a-z][a-z0-9+.-]*:|/|#)", re.IGNORECASE)


def _markdown() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": False}).enable("table")


def _unlink_relative(tokens: list[Token]) -> None:
    """Drop the links whose target is another file of the repository, keeping their text."""
    for token in tokens:
        if token.type != "inline" or not token.children:
            continue
        kept: list[Token] = []
        dropped: list[bool] = []
        for child in token.children:
            if child.type == "link_open":
                drop = not _ABSOLUTE.match(str(child.attrGet("href") or ""))
                dropped.append(drop)
                if drop:
                    continue
            elif child.type == "link_close" and dropped and dropped.pop():
                continue
            kept.append(child)
        token.children = kept


def render_markdown(text: str) -> Markup:
    """The HTML of a Markdown text, raw HTML escaped, relative links as text."""
    md = _markdown()
    tokens = md.parse(text)
    _unlink_relative(tokens)
    return Markup(md.renderer.render(tokens, md.options, {}))  # noqa: S704 - escaped by markdown-it


def document(name: str) -> tuple[str, Markup] | None:
    """(title, HTML) of the document `name` (`DOCUMENTS`), or None when there is no such
    document or it is not installed. Its first level-1 heading is its title. Only listed
    names reach the cache: a name from a URL is anything."""
    file_name = DOCUMENTS.get(name)
    return None if file_name is None else _document(name, file_name)


@cache
def _document(name: str, file_name: str) -> tuple[str, Markup] | None:
    for folder in DOCUMENT_DIRS:
        path = folder / file_name
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            heading = re.search(r"^# (.+)$", text, flags=re.MULTILINE)
            return (heading.group(1).strip() if heading else name), render_markdown(text)
    return None
