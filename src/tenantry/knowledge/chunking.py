"""Paragraph-aware chunking: whole paragraphs while they fit, sentences when one does not, and an
overlap that starts on a word so no chunk begins mid-word."""

from __future__ import annotations

import re

PARAGRAPHS = re.compile(r"\n\s*\n")
SENTENCES = re.compile(r"(?<=[.!?¿¡;:])\s+")


def _pieces(text: str, size: int) -> list[str]:
    """Paragraphs, with any paragraph longer than `size` cut into sentences, then words."""
    out: list[str] = []
    for paragraph in PARAGRAPHS.split(text):
        paragraph = " ".join(paragraph.split())
        if not paragraph:
            continue
        if len(paragraph) <= size:
            out.append(paragraph)
            continue
        for sentence in SENTENCES.split(paragraph):
            while len(sentence) > size:
                cut = sentence.rfind(" ", 0, size)
                cut = cut if cut > 0 else size
                out.append(sentence[:cut])
                sentence = sentence[cut:].strip()
            if sentence:
                out.append(sentence)
    return out


def _tail(text: str, overlap: int) -> str:
    if overlap <= 0 or len(text) <= overlap:
        return text if overlap > 0 else ""
    start = text.find(" ", len(text) - overlap)
    return text[start + 1 :] if start >= 0 else ""


def chunk_text(text: str, *, size: int = 800, overlap: int = 100) -> list[str]:
    chunks: list[str] = []
    current = ""
    for piece in _pieces(text, size):
        joiner = "\n\n" if current else ""
        if current and len(current) + len(joiner) + len(piece) > size:
            chunks.append(current)
            carried = _tail(current, overlap)
            current = (
                f"{carried} {piece}".strip()
                if carried and len(carried) + len(piece) < size
                else piece
            )
        else:
            current = f"{current}{joiner}{piece}"
    if current:
        chunks.append(current)
    return chunks
