"""Text out of what people upload: plain text, Markdown, HTML and PDF (pypdf).

Uploads are hostile until read: `prepare` runs in a sandbox process (see `sandbox.py`) under limits
on pages, on how far a PDF may inflate against its file, and on chunks per document.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from html.parser import HTMLParser

from pypdf import PdfReader, apply_configuration
from pypdf.errors import LimitReachedError, PyPdfError

from tenantry.errors import ValidationFailed
from tenantry.knowledge.chunking import chunk_text

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


# Undecodable bytes and control characters past this share of the text: binary, not text.
BINARY_SHARE = 0.1
CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
BOMS = ((b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"))
DECOMPRESSION_LIMITS = (
    "zlib_maximum_output_length",
    "lzw_maximum_output_length",
    "run_length_maximum_output_length",
    "brotli_maximum_output_length",
    "jbig2_maximum_output_length",
    "array_based_stream_maximum_output_length",
)


class UnreadableDocument(ValueError):
    """The content cannot be turned into text; the ingestion fails with this reason."""


@dataclass(frozen=True)
class ExtractionLimits:
    max_pages: int = 1000
    max_inflation: float = 100
    min_inflated_bytes: int = 1_000_000
    max_chunks: int = 2000
    chunk_size: int = 800
    chunk_overlap: int = 100

    def inflated_allowance(self, upload_bytes: int) -> int:
        """How many bytes a PDF's streams may inflate to: a multiple of the file, with a floor."""
        return max(int(self.max_inflation * upload_bytes), self.min_inflated_bytes)


DEFAULT_LIMITS = ExtractionLimits()


@dataclass(frozen=True)
class Prepared:
    text: str
    chunks: list[str]


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


def extract_text(
    content: bytes, source_type: str, *, limits: ExtractionLimits = DEFAULT_LIMITS
) -> str:
    """The document's text, cleaned of what PostgreSQL cannot store; runs in the sandbox process."""
    if source_type == "pdf":
        raw = _pdf_text(content, limits)
    else:
        raw = _decode(content)
        if source_type == "html":
            parser = _HtmlText()
            parser.feed(raw)
            raw = "".join(parser.parts)
    text, dropped = _clean(raw)
    if dropped > BINARY_SHARE * max(1, len(raw)):
        raise UnreadableDocument("the file holds binary data, not text")
    if not text.strip():
        raise UnreadableDocument("the document holds no text")
    return text


def prepare(
    content: bytes, source_type: str, *, title: str, limits: ExtractionLimits = DEFAULT_LIMITS
) -> Prepared:
    """Text and chunks of one document, refused past the limits with a reason a person can read."""
    text = extract_text(content, source_type, limits=limits)
    chunks = chunk_text(f"{title}\n\n{text}", size=limits.chunk_size, overlap=limits.chunk_overlap)
    if len(chunks) > limits.max_chunks:
        raise UnreadableDocument(
            f"the document is too long: its text makes {len(chunks)} chunks and at most "
            f"{limits.max_chunks} are kept; split it into smaller documents"
        )
    return Prepared(text, chunks)


def _pdf_text(content: bytes, limits: ExtractionLimits) -> str:
    allowance = limits.inflated_allowance(len(content))
    too_big = UnreadableDocument(
        f"the PDF's content inflates to more than {_size(allowance)} from a "
        f"{_size(len(content))} file (at most {limits.max_inflation:g} times the file is read)"
    )
    # pypdf's own decompression limits, lowered to what this upload may inflate to.
    caps = {name: allowance for name in DECOMPRESSION_LIMITS}
    try:
        with apply_configuration(**caps):
            reader = PdfReader(io.BytesIO(content))
            pages = len(reader.pages)
            if pages > limits.max_pages:
                raise UnreadableDocument(
                    f"the PDF has {pages} pages; at most {limits.max_pages} are read"
                )
            inflated, parts = 0, []
            for page in reader.pages:
                contents = page.get_contents()
                inflated += len(contents.get_data()) if contents is not None else 0
                if inflated > allowance:
                    raise too_big
                parts.append(page.extract_text() or "")
    except UnreadableDocument:
        raise
    except LimitReachedError as error:
        if "decompress" in str(error).lower():
            raise too_big from error
        raise UnreadableDocument(f"the PDF is too complex to read ({error})") from error
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError) as error:
        raise UnreadableDocument(f"the PDF could not be read ({error})") from error
    return "\n\n".join(parts)


def _decode(content: bytes) -> str:
    for bom, encoding in BOMS:
        if content.startswith(bom):
            return content[len(bom) :].decode(encoding, errors="replace")
    return content.decode("utf-8", errors="replace")


def _clean(text: str) -> tuple[str, int]:
    """Without NUL and other control characters (PostgreSQL refuses NUL); how many were dropped,
    undecodable bytes included, so that binary content can be told from text."""
    cleaned = CONTROL.sub("", text)
    # Lone surrogates (from a PDF's broken text map) cannot be encoded for the database.
    cleaned = cleaned.encode("utf-8", errors="replace").decode("utf-8")
    dropped = len(text) - len(cleaned) + cleaned.count("\ufffd")
    return cleaned, dropped


def _size(n: int) -> str:
    for unit, scale in (("MB", 1_000_000), ("KB", 1_000)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"
