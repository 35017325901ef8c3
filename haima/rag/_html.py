"""HTML to plain text with the standard library's parser: no markup, no scripts or
styles, paragraph breaks kept (the splitter prefers them), and the page's title."""

from __future__ import annotations

import re
from html.parser import HTMLParser

#: Elements whose content is never text a reader sees.
_HIDDEN = frozenset({"script", "style", "noscript", "template", "svg", "head", "iframe"})
#: Elements that end a paragraph.
_BLOCKS = frozenset(
    {
        "address", "article", "aside", "blockquote", "dd", "details", "div", "dl", "dt",
        "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6",
        "header", "hr", "li", "main", "nav", "ol", "p", "pre", "section", "summary",
        "table", "tr", "ul", "body", "html",
    }
)  # fmt: skip
#: Void elements never get an end tag, so they must not open a hidden region.
_VOID = frozenset({"br", "img", "input", "meta", "link", "hr", "wbr", "source", "col"})
_SPACES = re.compile(r"[ \t\r\f\v]+")
_BLANK_LINES = re.compile(r"\n\s*\n\s*")


class _TextParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title_parts: list[str] = []
        self.h1_parts: list[str] = []
        self._hidden: list[str] = []  # open hidden elements (a stack, for nesting)
        self._in_title = False
        self._in_h1 = False
        self._in_pre = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        elif tag == "body" and "head" in self._hidden:
            self._hidden.remove("head")  # HTML lets a page omit </head>
        elif tag in _HIDDEN and tag not in _VOID:
            self._hidden.append(tag)
        if self._hidden:
            return
        if tag == "h1":
            self._in_h1 = True
        if tag == "pre":
            self._in_pre += 1
        if tag in _BLOCKS:
            self.parts.append("\n\n")
        elif tag == "br":
            self.parts.append("\n")
        elif tag in {"td", "th"}:
            self.parts.append(" | ")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        if self._hidden:
            if tag == self._hidden[-1]:
                self._hidden.pop()
            return
        if tag == "h1":
            self._in_h1 = False
        if tag == "pre" and self._in_pre:
            self._in_pre -= 1
        if tag in _BLOCKS:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title_parts.append(data)
            return
        if self._hidden:
            return
        if self._in_h1:
            self.h1_parts.append(data)
        # Outside <pre>, source line breaks are just spaces.
        self.parts.append(data if self._in_pre else data.replace("\n", " "))


def html_to_text(source: str) -> tuple[str, str | None]:
    """(visible text with paragraphs separated by blank lines, the title or None).

    The title is `<title>`, else the first `<h1>`."""
    parser = _TextParser()
    parser.feed(source)
    parser.close()
    lines = (_SPACES.sub(" ", line).strip() for line in "".join(parser.parts).split("\n"))
    text = _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()
    title = " ".join("".join(parser.title_parts).split()) or " ".join(
        "".join(parser.h1_parts).split()
    )
    return text, title or None
