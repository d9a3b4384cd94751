"""Open plain, gzip and zstandard files as one buffered binary stream.

Both decompressors raise `TruncatedArchive` when the input ends inside a compressed frame,
so a cut-off download is reported instead of silently yielding a short file (zstandard's own
stream reader returns a clean EOF in that case).

    with open_binary(Path("docs.jsonl.zst")) as fh:
        for line in fh: ...
"""

from __future__ import annotations

import gzip
import io
import zlib
from pathlib import Path
from typing import BinaryIO

import zstandard

_CHUNK = 1 << 16


class TruncatedArchive(EOFError):
    """A compressed file ended before its end-of-stream marker."""


class CorruptArchive(ValueError):
    """A compressed file holds bytes its decompressor cannot decode."""


def compression_of(path: Path) -> str | None:
    suffix = path.suffix.lower()
    return {".gz": "gzip", ".gzip": "gzip", ".zst": "zstd", ".zstd": "zstd"}.get(suffix)


def open_binary(path: Path) -> BinaryIO:
    kind = compression_of(path)
    raw = open(path, "rb")  # noqa: SIM115 - handed to the wrapper, closed with it
    if kind == "gzip":
        return io.BufferedReader(_GzipRaw(raw), buffer_size=_CHUNK)
    if kind == "zstd":
        return io.BufferedReader(_ZstdRaw(raw), buffer_size=_CHUNK)
    return raw


class _GzipRaw(io.RawIOBase):
    """gzip.GzipFile with its EOF and CRC errors mapped onto ours."""

    def __init__(self, fh: BinaryIO):
        self._fh = fh
        self._gz = gzip.GzipFile(fileobj=fh, mode="rb")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        try:
            # readinto1: one decompression step per call. readinto would loop to fill the
            # whole buffer and, when the input ends early, drop what it had decoded so far.
            return self._gz.readinto1(buffer)
        except EOFError as e:
            raise TruncatedArchive(f"gzip stream ended early: {e}") from e
        except (gzip.BadGzipFile, zlib.error, OSError) as e:
            raise CorruptArchive(f"gzip stream is corrupt: {e}") from e

    def close(self) -> None:
        self._gz.close()
        self._fh.close()
        super().close()


class _ZstdRaw(io.RawIOBase):
    """Streaming zstd decoder over concatenated frames that notices a cut-off last frame."""

    def __init__(self, fh: BinaryIO):
        self._fh = fh
        self._decoder = zstandard.ZstdDecompressor().decompressobj()
        self._fed = False  # has the current frame's decoder seen any input?
        self._pending = b""
        self._offset = 0  # how much of _pending was handed out already

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        while self._offset >= len(self._pending):
            leftover = b""
            if self._decoder.eof:  # one frame done; the next may start in its unused bytes
                leftover = self._decoder.unused_data
                self._decoder = zstandard.ZstdDecompressor().decompressobj()
                self._fed = False
            compressed = leftover or self._fh.read(_CHUNK)
            if not compressed:
                if self._fed:
                    raise TruncatedArchive("zstd stream ended inside a frame")
                return 0
            self._fed = True
            try:
                self._pending = self._decoder.decompress(compressed)
                self._offset = 0
            except zstandard.ZstdError as e:
                raise CorruptArchive(f"zstd stream is corrupt: {e}") from e
        n = min(len(buffer), len(self._pending) - self._offset)
        buffer[:n] = self._pending[self._offset : self._offset + n]
        self._offset += n
        return n

    def close(self) -> None:
        self._fh.close()
        super().close()
