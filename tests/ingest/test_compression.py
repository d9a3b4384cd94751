"""open_binary: gzip and zstd round trips, multi-frame zstd, and truncated or corrupt archives."""

from __future__ import annotations

import gzip
import os
import random
from pathlib import Path

import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.ingest.compression import (
    CorruptArchive,
    TruncatedArchive,
    compression_of,
    open_binary,
)

PAYLOAD = b"".join(b"line %d: some text to compress\n" % i for i in range(2000))


def gz(data: bytes) -> bytes:
    return gzip.compress(data)


def zst(data: bytes) -> bytes:
    return zstandard.ZstdCompressor().compress(data)


COMPRESSORS = {".gz": gz, ".zst": zst}


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def read_all(path: Path) -> bytes:
    with open_binary(path) as fh:
        return fh.read()


def read_lines(path: Path) -> list[bytes]:
    with open_binary(path) as fh:
        return list(fh)


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("a.jsonl.gz", "gzip"),
        ("a.GZ", "gzip"),
        ("a.gzip", "gzip"),
        ("a.jsonl.zst", "zstd"),
        ("a.zstd", "zstd"),
        ("a.jsonl", None),
        ("a.gz.txt", None),
    ],
)
def test_compression_of_by_last_suffix(name, kind):
    assert compression_of(Path(name)) == kind


@pytest.mark.parametrize("suffix", COMPRESSORS)
def test_round_trip(tmp_path, suffix):
    path = write(tmp_path, "a.jsonl" + suffix, COMPRESSORS[suffix](PAYLOAD))
    assert read_all(path) == PAYLOAD


@pytest.mark.parametrize("suffix", COMPRESSORS)
def test_round_trip_line_by_line(tmp_path, suffix):
    path = write(tmp_path, "a.jsonl" + suffix, COMPRESSORS[suffix](PAYLOAD))
    assert read_lines(path) == PAYLOAD.splitlines(keepends=True)


@pytest.mark.parametrize("suffix", COMPRESSORS)
def test_empty_payload_reads_empty(tmp_path, suffix):
    path = write(tmp_path, "a" + suffix, COMPRESSORS[suffix](b""))
    assert read_all(path) == b""


def test_multi_frame_zstd_reads_every_frame(tmp_path):
    first, second = b"first frame\n" * 100, b"second frame\n" * 100
    path = write(tmp_path, "a.zst", zst(first) + zst(second))
    assert read_all(path) == first + second


def test_multi_frame_zstd_with_an_empty_frame_in_between(tmp_path):
    path = write(tmp_path, "a.zst", zst(b"one\n") + zst(b"") + zst(b"two\n"))
    assert read_all(path) == b"one\ntwo\n"


def test_many_small_zstd_frames(tmp_path):
    chunks = [b"frame %d\n" % i for i in range(500)]
    path = write(tmp_path, "a.zst", b"".join(zst(c) for c in chunks))
    assert read_all(path) == b"".join(chunks)


def test_multi_member_gzip_reads_every_member(tmp_path):
    path = write(tmp_path, "a.gz", gz(b"one\n") + gz(b"two\n"))
    assert read_all(path) == b"one\ntwo\n"


@pytest.mark.parametrize("suffix", COMPRESSORS)
@pytest.mark.parametrize("cut", ["half", "last_byte"])
def test_truncated_archive_raises_truncated(tmp_path, suffix, cut):
    data = COMPRESSORS[suffix](PAYLOAD)
    data = data[: len(data) // 2] if cut == "half" else data[:-1]
    path = write(tmp_path, "a" + suffix, data)
    with pytest.raises(TruncatedArchive):
        read_all(path)


def test_truncated_second_zstd_frame_raises_truncated(tmp_path):
    second = zst(PAYLOAD)
    path = write(tmp_path, "a.zst", zst(b"first\n") + second[: len(second) // 2])
    with pytest.raises(TruncatedArchive):
        read_all(path)


def test_truncated_archive_is_an_eof_error():
    assert issubclass(TruncatedArchive, EOFError)
    assert issubclass(CorruptArchive, ValueError)


def test_truncated_gzip_yields_every_line_decoded_before_the_cut(tmp_path):
    # Incompressible lines, so the cut falls well inside the stream and many lines precede it.
    rng = random.Random(0)
    lines = [rng.randbytes(300).hex().encode() + b"\n" for _ in range(2000)]
    data = gz(b"".join(lines))
    path = write(tmp_path, "a.gz", data[:-1])  # only the trailer is cut: every line decodes
    got = []
    with pytest.raises(TruncatedArchive), open_binary(path) as fh:
        for line in fh:
            got.append(line)
    assert got == lines


@pytest.mark.parametrize("suffix", COMPRESSORS)
def test_garbage_raises_corrupt(tmp_path, suffix):
    # Neither starts with its format's magic number: the decoder rejects the first bytes.
    path = write(tmp_path, "a.jsonl" + suffix, b"this is not compressed at all\n" * 50)
    with pytest.raises(CorruptArchive, match="corrupt"):
        read_all(path)


@pytest.mark.parametrize("suffix", COMPRESSORS)
def test_random_bytes_raise_corrupt(tmp_path, suffix):
    rng = random.Random(1)
    path = write(tmp_path, "a" + suffix, b"\x00\x01" + rng.randbytes(4000))
    with pytest.raises(CorruptArchive):
        read_all(path)


def test_gzip_with_trailing_garbage_raises_corrupt_after_the_data(tmp_path):
    path = write(tmp_path, "a.gz", gz(b"good\n") + b"garbage!")
    with pytest.raises(CorruptArchive), open_binary(path) as fh:
        assert fh.readline() == b"good\n"
        fh.read()


def test_gzip_with_flipped_crc_raises_corrupt(tmp_path):
    data = bytearray(gz(PAYLOAD))
    data[-8] ^= 0xFF  # first byte of the CRC32 in the trailer
    path = write(tmp_path, "a.gz", bytes(data))
    with pytest.raises(CorruptArchive, match="CRC"):
        read_all(path)


@pytest.mark.parametrize("name", ["a.jsonl", "a.txt", "a.parquet", "no_suffix"])
def test_plain_files_pass_through(tmp_path, name):
    data = os.urandom(1000) + b"\n" + PAYLOAD
    path = write(tmp_path, name, data)
    assert read_all(path) == data


def test_plain_file_is_not_decompressed_even_if_it_holds_gzip(tmp_path):
    data = gz(PAYLOAD)
    path = write(tmp_path, "a.bin", data)
    assert read_all(path) == data


@pytest.mark.parametrize("suffix", COMPRESSORS)
def test_close_closes_the_underlying_file(tmp_path, suffix):
    path = write(tmp_path, "a" + suffix, COMPRESSORS[suffix](PAYLOAD))
    fh = open_binary(path)
    fh.readline()
    fh.close()
    assert fh.closed


@settings(max_examples=50, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=200_000), suffix=st.sampled_from(sorted(COMPRESSORS)))
def test_random_bytes_round_trip(tmp_path, data, suffix):
    path = write(tmp_path, "r" + suffix, COMPRESSORS[suffix](data))
    assert read_all(path) == data


@settings(max_examples=30, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frames=st.lists(st.binary(max_size=5000), max_size=5))
def test_random_zstd_frames_round_trip(tmp_path, frames):
    path = write(tmp_path, "r.zst", b"".join(zst(f) for f in frames))
    assert read_all(path) == b"".join(frames)
