"""Just enough HTML reading for the report tests (stdlib html.parser)."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

VOID = {"meta", "link", "br", "input", "img", "hr", "col", "source", "circle", "line", "path", "rect"}


@dataclass
class El:
    tag: str
    attrs: dict[str, str]
    parent: "El | None" = None
    children: list["El"] = field(default_factory=list)
    text: str = ""

    @property
    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    def iter(self, tag: str | None = None, cls: str | None = None):
        for c in self.children:
            if (tag is None or c.tag == tag) and (cls is None or cls in c.classes):
                yield c
            yield from c.iter(tag, cls)

    def find(self, tag: str | None = None, cls: str | None = None, id: str | None = None) -> "El | None":
        for e in self.iter(tag, cls):
            if id is None or e.attrs.get("id") == id:
                return e
        return None

    def all_text(self) -> str:
        return self.text + "".join(c.all_text() for c in self.children)


class _Builder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = El("#root", {})
        self.cur = self.root

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        el = El(tag, {k: v or "" for k, v in attrs}, self.cur)
        self.cur.children.append(el)
        if tag not in VOID:
            self.cur = el

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.cur.children.append(El(tag, {k: v or "" for k, v in attrs}, self.cur))

    def handle_endtag(self, tag: str) -> None:
        e = self.cur
        while e is not None and e.tag != tag:
            e = e.parent
        if e is not None and e.parent is not None:
            self.cur = e.parent

    def handle_data(self, data: str) -> None:
        self.cur.text += data


def parse(path: Path) -> El:
    b = _Builder()
    b.feed(path.read_text())
    b.close()
    return b.root


def local_links(page: Path, root: El) -> list[tuple[str, Path]]:
    """(href, target file) for every relative link and stylesheet of a page."""
    out = []
    for e in root.iter():
        href = e.attrs.get("href") if e.tag in ("a", "link") else e.attrs.get("src")
        if not href:
            continue
        parts = urlsplit(href)
        if parts.scheme or parts.netloc:
            out.append((href, Path("/nonexistent-external") / href))
            continue
        if not parts.path:                      # same-page anchor
            continue
        out.append((href, (page.parent / unquote(parts.path)).resolve()))
    return out
