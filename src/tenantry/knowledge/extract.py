"""Text out of what people upload: plain text, Markdown, HTML and PDF (pypdf)."""

from __future__ import annotations

import io
from html.parser import HTMLParser

from pypdf import PdfReader
from pypdf.errors import PdfReadError

from tenantry.errors import ValidationFailed

SOURCE_TYPES = {
    ".txt": "txt",
    ".md": "md",
    ".markdown": "md",
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
}
CONTENT_TYPES = {
    "text/plain": "txt",
    "text/markdown": "md",
    "text/html": "html",
    "application/pdf": "pdf",
}
BLOCKS = {
    "p",
    "div",
    "br",
    "li",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "tr",
    "section",
    "article",
    "pre",
}


class UnreadableDocument(ValueError):
    """The content cannot be turned into text; the ingestion fails with this reason."""


def source_type_of(filename: str | None, content_type: str | None) -> str:
    name = (filename or "").lower()
    for suffix, kind in SOURCE_TYPES.items():
        if name.endswith(suffix):
            return kind
    kind = CONTENT_TYPES.get((content_type or "").split(";")[0].strip())
    if kind is None:
        raise ValidationFailed(
            "Upload a .txt, .md, .html or .pdf file.",
            code="unsupported-media-type",
            status=415,
            errors=[{"field": "file", "message": "unsupported type"}],
        )
    return kind


class _HtmlText(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self._skip += 1
        elif tag in BLOCKS:
            self.parts.append("\n\n")

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self._skip = max(0, self._skip - 1)
        elif tag in BLOCKS:
            self.parts.append("\n\n")

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)


def extract_text(content: bytes, source_type: str) -> str:
    if source_type == "pdf":
        try:
            reader = PdfReader(io.BytesIO(content))
            text = "\n\n".join(page.extract_text() or "" for page in reader.pages)
        except (PdfReadError, ValueError, KeyError) as error:
            raise UnreadableDocument(f"the PDF could not be read ({error})") from error
    else:
        decoded = content.decode("utf-8", errors="replace")
        if source_type == "html":
            parser = _HtmlText()
            parser.feed(decoded)
            decoded = "".join(parser.parts)
        text = decoded
    if not text.strip():
        raise UnreadableDocument("the document holds no text")
    return text
