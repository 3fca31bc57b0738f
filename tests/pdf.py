"""A minimal one-page PDF writer for tests and examples (Helvetica, WinAnsi: Spanish accents),
and the hostile PDFs the sandbox must stop."""

from __future__ import annotations

import zlib


def _escape(line: str) -> bytes:
    raw = line.encode("cp1252")
    return raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")


def simple_pdf(lines: list[str]) -> bytes:
    stream = (
        b"BT /F1 11 Tf 56 760 Td 15 TL "
        + b" ".join(b"(" + _escape(line) + b") '" for line in lines)
        + b" ET"
    )
    return _one_page(b"<< /Length " + str(len(stream)).encode() + b" >>", stream)


def flate_pdf(stream: bytes) -> bytes:
    """One page whose content stream is stored compressed (FlateDecode), as most PDFs do."""
    packed = zlib.compress(stream, 9)
    return _one_page(
        b"<< /Length " + str(len(packed)).encode() + b" /Filter /FlateDecode >>", packed
    )


def pdf_bomb(inflated_bytes: int = 6_000_000) -> bytes:
    """About 15 KB on disk; its content stream inflates to `inflated_bytes` of drawing operators."""
    line = b"0 0 m 612 792 l S\n"
    return flate_pdf(
        b"BT /F1 11 Tf 56 760 Td (Plano) Tj ET\n" + line * (inflated_bytes // len(line))
    )


def _one_page(stream_dict: bytes, stream: bytes) -> bytes:
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        stream_dict + b"\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    )
    return bytes(out)


CALDERA = [
    "Guía rápida: la caldera no enciende después de un corte de luz",
    "",
    "Tras un corte de suministro eléctrico, muchas calderas de condensación quedan bloqueadas.",
    "Compruebe primero que el interruptor de la caldera está encendido y que el diferencial",
    "del cuadro eléctrico no ha saltado.",
    "",
    "Pulse el botón de rearme (reset) durante tres segundos y espere dos minutos.",
    "Si la presión del circuito está por debajo de 1 bar, rellene con la llave de llenado",
    "hasta 1,5 bar antes de volver a rearmar.",
    "",
    "Si la pantalla muestra el código F28 o E133, no hay llama: revise la llave del gas.",
    "Si la caldera se bloquea tres veces seguidas, llame al servicio técnico de Chogar.",
]
