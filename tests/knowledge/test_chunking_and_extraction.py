"""Chunking keeps paragraphs whole where it can; extraction reads txt, md, html and pdf."""

from __future__ import annotations

import itertools

import pytest

from tenantry.errors import ValidationFailed
from tenantry.knowledge.chunking import chunk_text
from tenantry.knowledge.extract import UnreadableDocument, extract_text, source_type_of
from tests.pdf import simple_pdf


def test_paragraphs_stay_whole_and_chunks_stay_small():
    paragraphs = [f"Paragraph {i}. " + "word " * 30 for i in range(10)]
    chunks = chunk_text("\n\n".join(paragraphs), size=400, overlap=50)
    assert all(len(c) <= 400 for c in chunks)
    for paragraph in paragraphs:
        assert any(paragraph.strip() in c for c in chunks)  # never cut in two


def test_a_long_paragraph_is_cut_at_sentences_with_word_aligned_overlap():
    sentences = [f"Sentence number {i} talks about boilers and radiators." for i in range(40)]
    chunks = chunk_text(" ".join(sentences), size=300, overlap=60)
    assert len(chunks) > 5 and all(len(c) <= 300 for c in chunks)
    for before, after in itertools.pairwise(chunks):
        head = after.split(" ")[0]
        assert head in before.split(" ")  # the overlap starts on a whole word of the previous chunk
    joined = " ".join(chunks)
    assert all(s in joined for s in sentences)


def test_no_overlap_means_no_repetition():
    text = "\n\n".join(f"Block {i} " + "x" * 80 for i in range(6))
    chunks = chunk_text(text, size=200, overlap=0)
    assert sum(c.count("Block") for c in chunks) == 6


def test_extraction_of_each_format():
    assert extract_text(b"# Title\n\nBody", "md").startswith("# Title")
    html = b"<html><style>p{}</style><script>alert(1)</script><h1>Caldera</h1><p>No enciende</p></html>"
    text = extract_text(html, "html")
    assert "Caldera" in text and "No enciende" in text and "alert" not in text and "p{}" not in text
    pdf = extract_text(simple_pdf(["Presión baja en la caldera", "Rellenar hasta 1,5 bar"]), "pdf")
    assert "Presión baja en la caldera" in pdf and "1,5 bar" in pdf
    with pytest.raises(UnreadableDocument):
        extract_text(b"%PDF-1.4 garbage", "pdf")
    with pytest.raises(UnreadableDocument):
        extract_text(b"   \n  ", "txt")


def test_source_type_by_name_then_content_type():
    assert source_type_of("Guide.PDF", None) == "pdf"
    assert source_type_of("notes", "text/markdown; charset=utf-8") == "md"
    with pytest.raises(ValidationFailed) as refused:
        source_type_of("photo.png", "image/png")
    assert refused.value.status == 415
