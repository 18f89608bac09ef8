"""Hand-made tar header blocks (any field, any magic) for hostile and awkward test archives."""

from __future__ import annotations

import gzip

BLOCK = 512
POSIX = b"ustar\x0000"
GNU = b"ustar  \x00"
V7 = b"\x00" * 8


def pad(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % BLOCK)


def octal(value: int, width: int) -> bytes:
    return (b"%0*o" % (width - 1, value)) + b"\x00"


def base256(value: int, width: int = 12) -> bytes:
    """GNU base-256 numeric field (first byte 0x80, big-endian; 0xff for negative)."""
    if value < 0:
        return b"\xff" + (value % (1 << (8 * (width - 1)))).to_bytes(width - 1, "big")
    return b"\x80" + value.to_bytes(width - 1, "big")


def header(
    name: bytes | str,
    kind: bytes = b"0",
    *,
    size: int = 0,
    linkname: bytes | str = b"",
    mode: int = 0o644,
    magic: bytes = POSIX,
    prefix: bytes | str = b"",
    size_field: bytes | None = None,
) -> bytes:
    """One 512-byte header block with a correct checksum."""
    as_bytes = [v.encode() if isinstance(v, str) else v for v in (name, linkname, prefix)]
    raw_name, raw_link, raw_prefix = as_bytes
    assert len(raw_name) <= 100 and len(raw_link) <= 100 and len(raw_prefix) <= 155
    buf = bytearray(BLOCK)
    buf[0:100] = raw_name.ljust(100, b"\0")
    buf[100:108] = octal(mode, 8)
    buf[108:116] = octal(0, 8)
    buf[116:124] = octal(0, 8)
    buf[124:136] = size_field if size_field is not None else octal(size, 12)
    buf[136:148] = octal(946_684_800, 12)
    buf[148:156] = b" " * 8
    buf[156:157] = kind
    buf[157:257] = raw_link.ljust(100, b"\0")
    buf[257:265] = magic
    if magic != V7:
        buf[265:269] = b"root"
        buf[297:301] = b"root"
    buf[345:500] = raw_prefix.ljust(155, b"\0")
    buf[148:156] = b"%06o\x00 " % sum(buf)
    return bytes(buf)


def pax_records(records: list[tuple[str, str | bytes]]) -> bytes:
    out = b""
    for key, value in records:
        raw = value.encode() if isinstance(value, str) else value
        body = b" " + key.encode() + b"=" + raw + b"\n"
        length = len(body) + 1
        while len(str(length)) + len(body) != length:
            length = len(str(length)) + len(body)
        out += str(length).encode() + body
    return out


def extended(kind: bytes, payload: bytes, *, magic: bytes = POSIX) -> bytes:
    """An extended header (``x``, ``g``, ``L``, ``K``) and its padded payload."""
    name = "././@LongLink" if kind in (b"L", b"K") else "././@PaxHeader"
    return header(name, kind, size=len(payload), magic=magic) + pad(payload)


def pax(*records: tuple[str, str | bytes], kind: bytes = b"x") -> bytes:
    return extended(kind, pax_records(list(records)))


def long_name(name: str | bytes, kind: bytes = b"L") -> bytes:
    raw = name.encode() if isinstance(name, str) else name
    return extended(kind, raw + b"\0", magic=GNU)


def file(name: str | bytes, data: bytes = b"", **kw: object) -> bytes:
    return header(name, b"0", size=len(data), **kw) + pad(data)  # type: ignore[arg-type]


def directory(name: str | bytes, **kw: object) -> bytes:
    return header(name, b"5", mode=0o755, **kw)  # type: ignore[arg-type]


def symlink(name: str | bytes, target: str | bytes, **kw: object) -> bytes:
    return header(name, b"2", linkname=target, mode=0o777, **kw)  # type: ignore[arg-type]


def hardlink(name: str | bytes, target: str | bytes, **kw: object) -> bytes:
    return header(name, b"1", linkname=target, **kw)  # type: ignore[arg-type]


END = b"\0" * (2 * BLOCK)


def archive(*pieces: bytes) -> bytes:
    """``.tar.gz`` of the pieces followed by the end-of-archive marker."""
    return gzip.compress(b"".join(pieces) + END, mtime=0)
