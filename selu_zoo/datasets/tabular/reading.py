"""Reading a user's files: streamed bytes and hashes, CSV records, and field values."""

from __future__ import annotations

import bz2
import csv
import gzip
import hashlib
import io
from typing import Iterator

import tensorflow as tf

from selu_zoo import storage
from selu_zoo.datasets.tabular import spec

READ_CHUNK = 1 << 20
# Doubles of smaller magnitude round to a finite float32; larger ones become inf.
FLOAT32_LIMIT = 2.0**128 * (1 - 2.0**-25)
# Field texts read as missing values (compared after strip() and lower()).
MISSING_TOKENS = frozenset(
    {"", "?", "na", "n/a", "#n/a", "<na>", "nan", "-nan", "null", "none"})


# ---------------------------------------------------------------------------------------
# Reading bytes and records.


class _HashingReader(io.RawIOBase):
    """A raw binary stream over a ``tf.io.gfile.GFile`` that hashes what it reads."""

    def __init__(self, gfile, hasher):
        super().__init__()
        self._gfile = gfile
        self.hasher = hasher

    def readable(self):
        return True

    def readinto(self, buffer):
        data = self._gfile.read(len(buffer))
        buffer[:len(data)] = data
        self.hasher.update(data)
        return len(data)

    def close(self):
        if not self.closed:
            self._gfile.close()
        super().close()


def file_sha256(path: str) -> str:
    """Returns the hex SHA-256 of a file's bytes, read in 1 MiB chunks.

    Raises:
      storage.StorageError: If the file cannot be read.
    """
    hasher = hashlib.sha256()
    with storage.reported("read", path), tf.io.gfile.GFile(path, "rb") as f:
        while chunk := f.read(READ_CHUNK):
            hasher.update(chunk)
    return hasher.hexdigest()


_DECOMPRESSORS = {".gz": lambda raw: gzip.GzipFile(fileobj=raw, mode="rb"),
                  ".bz2": lambda raw: bz2.BZ2File(raw, mode="rb")}


def _decompressed(path, raw):
    """``raw`` (a binary stream of ``path``), decompressed when the name ends in .gz or .bz2."""
    for suffix, opener in _DECOMPRESSORS.items():
        if path.lower().endswith(suffix):
            return opener(raw)
    return raw


def detect_delimiter(path: str) -> str:
    """The one of `spec.DELIMITERS` the first non-blank line has most of outside quotes
    (``,`` when it has none)."""
    with storage.reported("read", path), _decompressed(
            path, tf.io.gfile.GFile(path, "rb")) as raw:
        line = b""
        while not line.strip():
            line = raw.readline()
            if not line:
                break
    unquoted = line.decode("utf-8-sig", errors="replace").split('"')[::2]
    counts = {d: sum(part.count(d) for part in unquoted) for d in spec.DELIMITERS}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


def read_records(path: str, delimiter: str, digest: str | None = None
                 ) -> Iterator[tuple[int, list[str]]]:
    """Yields ``(line, fields)`` for each non-blank record of a CSV file (``.gz`` and ``.bz2``
    files are decompressed as they are read).

    Args:
      path: The file.
      delimiter: Field separator, or ``"auto"`` (`detect_delimiter`).
      digest: Expected SHA-256 of the whole file, checked once it has all been read.

    Raises:
      spec.CsvError: If the file is not UTF-8, not valid CSV, or (with ``digest``) changed.
    """
    if delimiter == "auto":
        delimiter = detect_delimiter(path)
    hasher = hashlib.sha256()
    raw = _decompressed(path, _HashingReader(tf.io.gfile.GFile(path, "rb"), hasher))
    with storage.reported("read", path), io.TextIOWrapper(
            io.BufferedReader(raw, READ_CHUNK), encoding="utf-8-sig", newline="") as text:
        reader = csv.reader(text, delimiter=delimiter)
        try:
            for fields in reader:
                if len(fields) > 1 or (fields and fields[0].strip()):
                    yield reader.line_num, fields
        except UnicodeDecodeError:
            raise spec.CsvError(f"{path} line {_undecodable_line(path)}: not UTF-8 text; save the "
                                f"file as UTF-8") from None
        except csv.Error as error:
            raise spec.CsvError(f"{path} line {reader.line_num}: not valid CSV ({error})") from None
    if digest is not None and hasher.hexdigest() != digest:
        raise spec.CsvError(f"{path} changed while it was being prepared; run again")


def _undecodable_line(path: str) -> int | str:
    """The first physical line that is not UTF-8 (the decoder fails on whole chunks)."""
    with storage.reported("read", path), _decompressed(
            path, tf.io.gfile.GFile(path, "rb")) as f:
        for number, line in enumerate(f, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                return number
    return "?"


# ---------------------------------------------------------------------------------------
# Values.


def is_missing(text: str) -> bool:
    return text.strip().lower() in MISSING_TOKENS


def parse_number(text: str) -> float | None:
    """The float a field holds, or None unless it is a number that float32 holds finitely."""
    try:
        value = float(text)
    except ValueError:
        return None
    return value if abs(value) < FLOAT32_LIMIT else None  # False for NaN too.


def not_a_number_kind(text: str) -> str:
    """``"a number"``, or what a number such as ``inf`` or ``1e39`` fails to be."""
    try:
        float(text)
    except ValueError:
        return "a number"
    return "a finite float32 number (magnitude below 3.4e38)"


def is_name(text: str) -> bool:
    return parse_number(text) is None and not is_missing(text)


def canonical_number(text: str) -> tuple[str, float] | None:
    """``(name, value)`` of a numeric label (integers without ``.0``), or None."""
    value = parse_number(text)
    if value is None:
        return None
    if value.is_integer():
        try:
            return str(int(text)), value  # Exact, even beyond 2**53.
        except ValueError:  # "1.0", "1e3"
            return str(int(value)), value
    return repr(value), value


def quoted(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


