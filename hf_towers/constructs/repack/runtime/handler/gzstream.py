"""Streaming gzip decompression (RFC 1952, any number of members) that can resume mid-stream.

Output comes in chunks of at most ``out_chunk`` bytes whatever the input, so a gzip bomb never
inflates more than one chunk at a time; the decompression ratio is checked as data flows.

Resuming: Python's ``zlib`` module cannot start inflating in the middle of a deflate stream, but
the zlib C library it is linked against can (this is how ``zran.c`` in zlib's examples,
``indexed_gzip`` and ``rapidgzip`` build random-access indexes). The inflater drives zlib through
``ctypes`` with ``inflate(Z_BLOCK)``, which returns at every deflate block boundary; every
``span`` output bytes it records an *access point* (``Point``): the compressed offset and bit
offset of that boundary, the uncompressed offset, the last 32 KiB of output (the dictionary
later back-references may reach into), and the member's running CRC-32 and length. A new
``Inflater`` started at a point primes zlib with the leftover bits (``inflatePrime``) and the
window (``inflateSetDictionary``) and continues exactly where the stream was, reading the source
only from that byte. Gzip headers and trailers (CRC-32, ISIZE) are parsed and checked here, since
inflate runs in raw mode. Member starts are access points too (no window needed).
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import ctypes.util
import logging
import struct
import zlib
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from .errors import StreamError

LOG = logging.getLogger(__name__)

GZIP_MAGIC = b"\x1f\x8b"
OUT_CHUNK = 256 * 1024
RATIO_SLACK = 16 * 1024 * 1024
"""Decompressed bytes allowed beyond ``max_ratio * compressed`` (small archives of text)."""
SPAN = 256 * 1024
"""Uncompressed bytes between two access points (a resume re-reads at most about this much)."""
WINDOW = 32768
MAX_HEADER = 1024 * 1024
"""Largest gzip member header accepted (FEXTRA + FNAME + FCOMMENT)."""
KEEP_POINTS = 32
"""Recent access points kept; the consumer lags the inflater by a few MiB at most."""

Z_NO_FLUSH, Z_OK, Z_STREAM_END, Z_NEED_DICT, Z_BUF_ERROR, Z_BLOCK = 0, 0, 1, 2, -5, 5


def _stream_struct(name: str, total: Any, adler: Any, doc: str) -> type[ctypes.Structure]:
    """A ``z_stream``-shaped ``ctypes.Structure`` with the given total and check-value types."""
    fields = [
        ("next_in", ctypes.c_void_p),
        ("avail_in", ctypes.c_uint32),
        ("total_in", total),
        ("next_out", ctypes.c_void_p),
        ("avail_out", ctypes.c_uint32),
        ("total_out", total),
        ("msg", ctypes.c_char_p),
        ("state", ctypes.c_void_p),
        ("zalloc", ctypes.c_void_p),
        ("zfree", ctypes.c_void_p),
        ("opaque", ctypes.c_void_p),
        ("data_type", ctypes.c_int),
        ("adler", adler),
        ("reserved", ctypes.c_ulong),
    ]
    return type(name, (ctypes.Structure,), {"_fields_": fields, "__doc__": doc})


_ZStream = _stream_struct(
    "_ZStream",
    ctypes.c_ulong,
    ctypes.c_ulong,
    "``z_stream`` of zlib.h (same layout on every LP64/LLP64 platform zlib supports).",
)
_ZngStream = _stream_struct(
    "_ZngStream",
    ctypes.c_size_t,
    ctypes.c_uint32,
    "``zng_stream`` of zlib-ng's native ``zlib-ng.h``: ``size_t`` totals, a 32-bit ``adler``. "
    "``zng_inflateInit2_`` checks ``sizeof`` and the major version, so a layout change fails "
    "init (and the next backend is used) rather than corrupting memory.",
)


@dataclass(frozen=True)
class _Backend:
    """One C inflater reached through ``ctypes`` (which releases the GIL during each call)."""

    name: str
    version: str
    stream: type[ctypes.Structure]
    init: Any
    """``init(strm)``: raw inflate (window bits -15), returns a zlib status."""
    inflate: Any
    end: Any
    reset: Any
    prime: Any
    set_dictionary: Any
    get_dictionary: Any
    crc32: Any
    """``crc32(crc, address, length)`` on the output buffer (no copy)."""


def _bind(lib: Any, prefix: str, stream: type[ctypes.Structure]) -> dict[str, Any]:
    """Set the argument/return types of the inflate functions named ``prefix + name``."""
    vp, ip, u32 = ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32
    sp = ctypes.POINTER(stream)
    crc = ctypes.c_uint32 if prefix == "zng_" else ctypes.c_ulong
    signatures: dict[str, tuple[list[Any], Any]] = {
        "inflateInit2_": ([sp, ip, ctypes.c_char_p, ip], ip),
        "inflate": ([sp, ip], ip),
        "inflateEnd": ([sp], ip),
        "inflateReset": ([sp], ip),
        "inflatePrime": ([sp, ip, ip], ip),
        "inflateSetDictionary": ([sp, vp, u32], ip),
        "inflateGetDictionary": ([sp, vp, ctypes.POINTER(u32)], ip),
        "crc32": ([crc, vp, ctypes.c_uint], crc),
    }
    out = {}
    for name, (argtypes, restype) in signatures.items():
        function = getattr(lib, prefix + name)  # AttributeError when missing
        function.argtypes, function.restype = argtypes, restype
        out[name] = function
    return out


def _backend(lib: Any, name: str, prefix: str, version: bytes) -> _Backend:
    stream = _ZngStream if prefix == "zng_" else _ZStream
    f = _bind(lib, prefix, stream)
    init2 = f["inflateInit2_"]
    return _Backend(
        name=name,
        version=version.decode(),
        stream=stream,
        init=lambda strm: init2(strm, -15, version, ctypes.sizeof(stream)),
        inflate=f["inflate"],
        end=f["inflateEnd"],
        reset=f["inflateReset"],
        prime=f["inflatePrime"],
        set_dictionary=f["inflateSetDictionary"],
        get_dictionary=f["inflateGetDictionary"],
        crc32=f["crc32"],
    )


ZLIB: Any = zlib
"""The Python deflate module: zlib-ng's (same API as ``zlib``, ~1.6x its speed) when the pinned
wheel in the function's asset (``hf_towers/constructs/repack/vendor.py``) imports, else ``zlib``."""
with contextlib.suppress(ImportError):
    from zlib_ng import zlib_ng as ZLIB


def _load_zlib_ng() -> _Backend | None:
    """zlib-ng's native API from the ``zlib-ng`` wheel (``ZLIB``): its extension module exports
    the ``zng_*`` functions, so ``ctypes`` opens that very file. 1.4x zlib's inflate on fp16
    weights, 2.7x on stored blocks, ~7x its CRC-32 (``bench/inflate.py``)."""
    if ZLIB is zlib:
        return None
    try:
        lib = ctypes.CDLL(ZLIB.__file__)
        lib.zlibng_version.restype = ctypes.c_char_p
        backend = _backend(lib, "zlib-ng", "zng_", lib.zlibng_version())
        probe = backend.stream()
        if backend.init(ctypes.byref(probe)) != Z_OK:
            raise OSError("zng_inflateInit2_ refused this stream layout or version")
        backend.end(ctypes.byref(probe))
    except (OSError, AttributeError) as exc:
        LOG.warning("zlib-ng is installed but not usable through ctypes (%s): using zlib", exc)
        return None
    return backend


def _load_zlib() -> _Backend | None:
    """The zlib shared library the ``zlib`` module already loaded (dlopen returns it), or None.

    Without it (a Python with zlib linked statically and its symbols hidden), the inflater falls
    back to ``zlib.decompressobj``, whose access points are only the gzip member starts.
    """
    candidates: list[str | None] = ["libz.so.1", "libz.dylib", "zlib1.dll"]
    errors = []
    for name in [*candidates, "find_library", getattr(zlib, "__file__", None), None]:
        if name == "find_library":
            name = ctypes.util.find_library("z")
            if name is None:
                continue
        try:
            lib = ctypes.CDLL(name)
            lib.zlibVersion.restype = ctypes.c_char_p
            return _backend(lib, "zlib", "", lib.zlibVersion())
        except (OSError, AttributeError) as exc:
            errors.append(f"{name}: {exc}")
            continue
    LOG.warning("zlib's C library is not loadable (%s): resuming at member starts only", errors)
    return None


def load_backend(*, prefer_zlib_ng: bool = True) -> _Backend | None:
    """The fastest inflater available: zlib-ng, else the system zlib, else None (the module)."""
    return (_load_zlib_ng() if prefer_zlib_ng else None) or _load_zlib()


_Z = load_backend()
BACKEND = _Z.name if _Z else "zlib module"
"""Which inflater this process uses (logged by the handler, reported by the benchmark)."""


@dataclass(frozen=True)
class Point:
    """Where inflating can restart: a deflate block boundary, or the start of a gzip member."""

    comp: int
    """Offset in the compressed object of the next whole byte to read."""
    bits: int
    """Bits of the byte at ``comp - 1`` not yet decoded (0-7)."""
    out: int
    """Uncompressed offset (in the concatenated output of every member)."""
    window: bytes
    """Up to 32 KiB of output before ``out`` (empty at a member start)."""
    crc: int
    size: int
    """CRC-32 and length of the current member's output so far."""
    members: int
    """Members started before this point (the current one included, unless ``at_member``)."""
    at_member: bool
    """A gzip member header starts at ``comp``."""

    @property
    def read_from(self) -> int:
        """First byte of the source a resumed read must fetch."""
        return self.comp - (1 if self.bits else 0)

    def to_json(self) -> dict[str, Any]:
        return {
            "comp": self.comp,
            "bits": self.bits,
            "out": self.out,
            "window": base64.b64encode(zlib.compress(self.window, 6)).decode(),
            "crc": self.crc,
            "size": self.size,
            "members": self.members,
            "at_member": self.at_member,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Point:
        return cls(
            comp=int(data["comp"]),
            bits=int(data["bits"]),
            out=int(data["out"]),
            window=zlib.decompress(base64.b64decode(data["window"])),
            crc=int(data["crc"]),
            size=int(data["size"]),
            members=int(data["members"]),
            at_member=bool(data["at_member"]),
        )


START = Point(comp=0, bits=0, out=0, window=b"", crc=0, size=0, members=0, at_member=True)


def _header_length(buf: bytes, off: int) -> int | None:
    """Length of the gzip member header at ``buf[off:]``; None if more bytes are needed."""
    end = len(buf)
    if end - off < 10:
        return None
    if buf[off + 2] != 8:
        raise StreamError("corrupt gzip stream (unknown compression method)")
    flags = buf[off + 3]
    if flags & 0xE0:
        raise StreamError("corrupt gzip stream (unknown header flags set)")
    pos = off + 10
    if flags & 4:  # FEXTRA
        if end - pos < 2:
            return None
        pos += 2 + (buf[pos] | buf[pos + 1] << 8)
    for flag in (8, 16):  # FNAME, FCOMMENT: zero-terminated
        if flags & flag:
            zero = buf.find(b"\0", pos)
            if zero < 0:
                return None
            pos = zero + 1
    if flags & 2:  # FHCRC
        pos += 2
    return pos - off if pos <= end else None


class Inflater:
    """Decompress ``chunks``; ``compressed`` and ``decompressed`` are absolute byte counts.

    ``chunks`` must start at ``start.read_from`` of the compressed object.
    """

    def __init__(
        self,
        chunks: Iterable[bytes],
        *,
        max_ratio: float,
        out_chunk: int = OUT_CHUNK,
        start: Point = START,
        span: int = SPAN,
    ) -> None:
        self._chunks = iter(chunks)
        self._max_ratio = max_ratio
        self._out_chunk = out_chunk
        self._start = start
        self._span = span
        self.compressed = start.read_from
        self.decompressed = start.out
        self.members = start.members
        self._points: deque[Point] = deque([start], maxlen=KEEP_POINTS)

    def point_before(self, out: int) -> Point:
        """The newest access point at or before uncompressed offset ``out`` (non-decreasing)."""
        points = self._points
        while len(points) > 1 and points[1].out <= out:
            points.popleft()
        if points[0].out > out:
            raise RuntimeError(f"no access point at or before {out} (oldest {points[0].out})")
        return points[0]

    def _check_ratio(self) -> None:
        if self.decompressed > self._max_ratio * self.compressed + RATIO_SLACK:
            raise StreamError(
                f"decompression ratio exceeds the bound of {self._max_ratio:g} "
                f"({self.decompressed} bytes from {self.compressed})"
            )

    def __iter__(self) -> Iterator[bytes]:
        z = _Z
        if z is None:
            yield from self._run_module()
            return
        strm = z.stream()
        ret = z.init(ctypes.byref(strm))
        if ret != Z_OK:
            raise MemoryError(f"inflateInit2 failed ({ret})")
        try:
            yield from self._run(z, strm)
        finally:
            z.end(ctypes.byref(strm))

    def _run(self, z: _Backend, strm: Any) -> Iterator[bytes]:
        start = self._start
        buf = b""
        off = 0
        base = start.read_from  # compressed offset of buf[0]

        def pull() -> bool:
            """Append the next input chunk to the unconsumed bytes; False at the end."""
            nonlocal buf, off, base
            chunk = next(self._chunks, None)
            if chunk is None:
                return False
            base += off
            buf = buf[off:] + chunk
            off = 0
            self.compressed += len(chunk)
            return True

        out_buf = ctypes.create_string_buffer(self._out_chunk)
        out_addr = ctypes.addressof(out_buf)
        filled = 0
        crc, size, members = start.crc, start.size, start.members
        in_member = not start.at_member
        last_point = start.out
        if in_member:
            if start.bits:
                if not buf and not pull():
                    raise StreamError("truncated gzip stream (ends inside a member)")
                z.prime(ctypes.byref(strm), start.bits, buf[off] >> (8 - start.bits))
                off += 1
            if start.window:
                z.set_dictionary(ctypes.byref(strm), start.window, len(start.window))
        window = ctypes.create_string_buffer(WINDOW)
        window_len = ctypes.c_uint(0)
        while True:
            if not in_member:
                if off >= len(buf) and not pull():
                    if members == 0:
                        raise StreamError("empty object (not a gzip file)")
                    break
                while len(buf) - off < 2 and pull():
                    pass
                if buf[off : off + 2] != GZIP_MAGIC:
                    if members == 0:
                        raise StreamError("not a gzip file (bad magic bytes)")
                    raise StreamError("trailing data after the last gzip member")
                if members:
                    self._points.append(
                        Point(base + off, 0, self.decompressed, b"", 0, 0, members, True)
                    )
                    last_point = self.decompressed
                while (length := _header_length(buf, off)) is None:
                    if len(buf) - off > MAX_HEADER:
                        raise StreamError("corrupt gzip stream (header too long)")
                    if not pull():
                        raise StreamError("truncated gzip stream (ends inside a member)")
                off += length
                z.reset(ctypes.byref(strm))
                crc = size = 0
                members += 1
                self.members = members
                in_member = True
                continue
            if off >= len(buf) and not pull():
                raise StreamError("truncated gzip stream (ends inside a member)")
            in_addr = ctypes.cast(ctypes.c_char_p(buf), ctypes.c_void_p).value or 0
            avail_in = len(buf) - off
            avail_out = self._out_chunk - filled
            strm.next_in = in_addr + off
            strm.avail_in = avail_in
            strm.next_out = out_addr + filled
            strm.avail_out = avail_out
            # Stop at a block boundary (Z_BLOCK) only once an access point is due: fewer
            # round trips through Python than stopping at every block.
            due = self.decompressed - last_point >= self._span
            ret = z.inflate(ctypes.byref(strm), Z_BLOCK if due else Z_NO_FLUSH)
            off += avail_in - strm.avail_in
            produced = avail_out - strm.avail_out
            if produced:
                crc = z.crc32(crc, out_addr + filled, produced)
                size += produced
                filled += produced
                self.decompressed += produced
                self._check_ratio()
            if ret == Z_STREAM_END:
                while len(buf) - off < 8:
                    if not pull():
                        raise StreamError("truncated gzip stream (ends inside a member)")
                want_crc, want_size = struct.unpack_from("<II", buf, off)
                if want_crc != crc:
                    raise StreamError("corrupt gzip stream (incorrect data check)")
                if want_size != size & 0xFFFFFFFF:
                    raise StreamError("corrupt gzip stream (incorrect length check)")
                off += 8
                in_member = False
            elif ret not in (Z_OK, Z_BUF_ERROR):
                msg = strm.msg.decode(errors="replace") if strm.msg else f"zlib error {ret}"
                raise StreamError(f"corrupt gzip stream ({msg})")
            elif strm.data_type & 128 and not strm.data_type & 64 and due:
                window_len.value = WINDOW
                z.get_dictionary(ctypes.byref(strm), window, ctypes.byref(window_len))
                self._points.append(
                    Point(
                        comp=base + off,
                        bits=strm.data_type & 7,
                        out=self.decompressed,
                        window=window.raw[: window_len.value],
                        crc=crc,
                        size=size,
                        members=members,
                        at_member=False,
                    )
                )
                last_point = self.decompressed
            if filled == self._out_chunk or (filled and off >= len(buf)):
                yield ctypes.string_at(out_addr, filled)
                filled = 0
        if filled:
            yield ctypes.string_at(out_addr, filled)

    def _run_module(self) -> Iterator[bytes]:
        """The fallback without ``ctypes`` zlib: ``zlib.decompressobj``, points at member starts."""
        start = self._start
        if not start.at_member:
            raise RuntimeError("resuming inside a gzip member needs zlib's inflatePrime")
        received = start.read_from
        pending = b""
        dec: Any = None
        members = start.members

        def more() -> bytes | None:
            nonlocal received
            chunk = next(self._chunks, None)
            if chunk is not None:
                received += len(chunk)
                self.compressed = received
            return chunk

        while True:
            if not pending:
                chunk = more()
                if chunk is None:
                    break
                pending = chunk
            if dec is None:
                while len(pending) < 2 and (extra := more()) is not None:
                    pending += extra
                if pending[:2] != GZIP_MAGIC:
                    if members == 0:
                        raise StreamError("not a gzip file (bad magic bytes)")
                    raise StreamError("trailing data after the last gzip member")
                if members:
                    point = Point(
                        received - len(pending), 0, self.decompressed, b"", 0, 0, members, True
                    )
                    self._points.append(point)
                dec = zlib.decompressobj(wbits=31)
                members += 1
                self.members = members
            data, pending = pending, b""
            while True:
                try:
                    out = dec.decompress(data, self._out_chunk)
                except zlib.error as exc:
                    raise StreamError(f"corrupt gzip stream ({exc})") from exc
                data = dec.unconsumed_tail
                if out:
                    self.decompressed += len(out)
                    self._check_ratio()
                    yield out
                if dec.eof:
                    pending = dec.unused_data + data
                    dec = None
                    break
                if not data and len(out) < self._out_chunk:
                    break
        if members == 0:
            raise StreamError("empty object (not a gzip file)")
        if dec is not None:
            raise StreamError("truncated gzip stream (ends inside a member)")
