"""Bad and odd input files, generated; each function is named after the failure it reproduces."""

from __future__ import annotations

import io
import os
import struct
import subprocess
from pathlib import Path

import pymupdf
from PIL import Image

SASLPREP_TYPED = "\u2168 pass\u00ad"  # ROMAN NUMERAL NINE, space, SOFT HYPHEN: what a user types
SASLPREP_STORED = "IX pass"  # its RFC 4013 form, which a PDF 2.0 writer encrypts with


def text_pdf(pages: int, label: str = "Page") -> bytes:
    doc = pymupdf.open()
    for number in range(pages):
        doc.new_page(width=300, height=400).insert_text((40, 60), f"{label} {number + 1}", fontsize=14)
    return doc.tobytes()


def tiff_frames(count: int = 3) -> bytes:
    frames = [Image.new("L", (64 + 8 * n, 48), 200) for n in range(count)]
    out = io.BytesIO()
    frames[0].save(out, "TIFF", save_all=True, append_images=frames[1:])
    return out.getvalue()


def _ifds(data: bytes) -> list[int]:
    """Offsets of the IFDs of a little-endian TIFF."""
    offsets, offset = [], struct.unpack_from("<I", data, 4)[0]
    while offset:
        offsets.append(offset)
        (count,) = struct.unpack_from("<H", data, offset)
        offset = struct.unpack_from("<I", data, offset + 2 + 12 * count)[0]
    return offsets


def tiff_frame_missing_dimensions() -> bytes:
    """Frame 2's ImageWidth tag renamed: Pillow raises TypeError("Missing dimensions") counting frames."""
    data = bytearray(tiff_frames())
    offset = _ifds(bytes(data))[1]
    (count,) = struct.unpack_from("<H", data, offset)
    for entry in range(offset + 2, offset + 2 + 12 * count, 12):
        if struct.unpack_from("<H", data, entry)[0] == 256:
            struct.pack_into("<H", data, entry, 65000)
    return bytes(data)


def tiff_frame_garbled_strip() -> bytes:
    """Frame 2's strip offset points past the end of the file: that frame cannot decode, the others can."""
    data = bytearray(tiff_frames())
    offset = _ifds(bytes(data))[1]
    (count,) = struct.unpack_from("<H", data, offset)
    for entry in range(offset + 2, offset + 2 + 12 * count, 12):
        if struct.unpack_from("<H", data, entry)[0] == 273:  # StripOffsets
            struct.pack_into("<I", data, entry + 8, len(data) + 10_000)
    return bytes(data)


def la_tiff() -> bytes:
    """A TIFF in mode ``La`` (associated alpha, as libtiff's reference images): grey 90 at half alpha."""
    out = io.BytesIO()
    Image.new("LA", (40, 30), (90, 128)).save(out, "TIFF")
    data = bytearray(out.getvalue())
    offset = _ifds(bytes(data))[0]
    (count,) = struct.unpack_from("<H", data, offset)
    for entry in range(offset + 2, offset + 2 + 12 * count, 12):
        if struct.unpack_from("<H", data, entry)[0] == 338:  # ExtraSamples: 2 unassociated -> 1 associated
            struct.pack_into("<H", data, entry + 8, 1)
    return bytes(data)


def headerless_pdf() -> bytes:
    """A PDF whose ``%PDF-1.x`` header is gone; MuPDF rebuilds it from its objects."""
    data = text_pdf(2, "Headerless")
    return b"GARBAGE!" + data[data.index(b"\n") + 1 :]


def damaged_pdf_header() -> bytes:
    """Header ``%UPDF-1.7`` then garbage: a PDF by its header, damaged beyond repair."""
    return b"%UPDF-1.7\n" + os.urandom(2048).replace(b"obj", b"xxx")


def truncated_jpeg() -> bytes:
    image = Image.effect_noise((120, 160), 60).convert("RGB")
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    data = out.getvalue()
    return data[: int(len(data) * 0.6)]


def png_pillow_refuses() -> bytes:
    """A PNG with a bad IHDR CRC: Pillow refuses the file, MuPDF decodes it."""
    out = io.BytesIO()
    Image.new("RGB", (50, 40), (10, 200, 30)).save(out, "PNG")
    data = bytearray(out.getvalue())
    data[29:33] = b"\x00\x00\x00\x00"  # the IHDR chunk's CRC
    return bytes(data)


def broken_png() -> bytes:
    """A PNG signature then nothing readable: a format we read, damaged."""
    return b"\x89PNG\r\n\x1a\n" + os.urandom(600)


def saslprep_password_pdf() -> bytes:
    doc = pymupdf.open()
    doc.new_page().insert_text((72, 72), "secret")
    return doc.tobytes(encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw=SASLPREP_STORED, owner_pw="owner")


def encrypted_pdf() -> bytes:
    doc = pymupdf.open()
    doc.new_page().insert_text((72, 72), "secret")
    return doc.tobytes(encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw="pw", owner_pw="owner")


def render_workers_of(pid: int) -> list[int]:
    """Live render worker processes whose parent is ``pid`` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        state = stat.rsplit(")", 1)[1].split()[0]
        if ppid == pid and state != "Z" and b"render_worker" in cmdline:
            found.append(int(entry.name))
    return found


def run_quietly(args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, check=False, **kwargs)  # type: ignore[call-overload]
