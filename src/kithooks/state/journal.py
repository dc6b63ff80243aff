"""The journal beside a sidecar: what it holds and how it is parsed.

The journal (``<sidecar>.journal``) starts with one fixed-length header line::

    kithooks-state-journal 1 <sidecar length, 16 hex> <sidecar CRC-32, 8 hex> <generation, 16 hex>

naming the sidecar contents the journal applies to, then one line per durable mutation::

    <CRC-32 of the JSON, 8 hex> {"key": "new value", "deleted key": null}

A record is a whole ``set()``/``delete()`` or a whole ``batch()``. A journal whose header
names other sidecar contents is stale (a compaction finished renaming the sidecar but not
resetting the journal, or another program rewrote the sidecar): its records are ignored and
the next write starts it afresh. A last line that is incomplete or fails its CRC is the
unacknowledged write of a writer that crashed; a bad line followed by good ones is damage
and an error naming the journal and the line.
"""

from __future__ import annotations

import json
import os
import re
import zlib
from collections.abc import Mapping

from .codec import decode_object
from .errors import StateError

__all__ = [
    "HEADER_LENGTH",
    "Base",
    "apply",
    "base_of",
    "encode_record",
    "make_header",
    "parse_header",
    "parse_records",
]

_MAGIC = b"kithooks-state-journal 1 "
_HEADER = re.compile(rb"kithooks-state-journal 1 ([0-9a-f]{16}) ([0-9a-f]{8}) ([0-9a-f]{16})\n")
HEADER_LENGTH = len(_MAGIC) + 16 + 1 + 8 + 1 + 16 + 1

Base = tuple[int, int]
"""A sidecar's contents as (length, CRC-32)."""


def base_of(raw: bytes) -> Base:
    """The (length, CRC-32) a journal header names for the sidecar bytes ``raw``."""
    return len(raw), zlib.crc32(raw)


def make_header(base: Base) -> bytes:
    """A new header for a journal over the sidecar contents ``base``, with a fresh generation."""
    generation = int.from_bytes(os.urandom(8), "big")
    return _MAGIC + f"{base[0]:016x} {base[1]:08x} {generation:016x}\n".encode("ascii")


def parse_header(raw: bytes, where: str) -> Base | None:
    """The sidecar contents a journal starting with ``raw`` applies to.

    None when ``raw`` is empty or a torn prefix of a header (a crash while starting the
    journal); a :class:`StateError` naming ``where`` when it is something else.
    """
    match = _HEADER.match(raw)
    if match is not None:
        return int(match[1], 16), int(match[2], 16)
    head = raw[:HEADER_LENGTH]
    if b"\n" not in head and (_MAGIC.startswith(head) or head.startswith(_MAGIC)):
        return None
    raise StateError(f"{where} line 1: not a kithooks state journal header")


def encode_record(changes: Mapping[str, str | None]) -> bytes:
    """One journal line for ``changes`` (key to new value, None for a deleted key)."""
    body = json.dumps(changes, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return b"%08x %s\n" % (zlib.crc32(body), body)


def _checked(line: bytes) -> bytes | None:
    if len(line) < 10 or line[8:9] != b" ":
        return None
    try:
        crc = int(line[:8], 16)
    except ValueError:
        return None
    body = line[9:]
    return body if zlib.crc32(body) == crc else None


def parse_records(
    buf: bytes, where: str, first_line: int
) -> tuple[list[dict[str, str | None]], int]:
    """The records in ``buf`` and how many bytes of it they take.

    ``first_line`` is the line number of ``buf``'s first line, for messages. Parsing stops
    at a torn last line; a bad line with a good one after it is a :class:`StateError`.
    """
    records: list[dict[str, str | None]] = []
    pos, line_no = 0, first_line
    while (end := buf.find(b"\n", pos)) >= 0:
        body = _checked(buf[pos:end])
        if body is None:
            if any(_checked(rest) is not None for rest in buf[end + 1 :].split(b"\n")):
                raise StateError(f"{where} line {line_no}: damaged record (checksum mismatch)")
            break
        records.append(decode_object(body, f"{where} line {line_no}", allow_null=True))
        pos, line_no = end + 1, line_no + 1
    return records, pos


def apply(data: dict[str, str], records: list[dict[str, str | None]]) -> None:
    """Apply ``records`` to ``data`` in order (None deletes)."""
    for record in records:
        for key, value in record.items():
            if value is None:
                data.pop(key, None)
            else:
                data[key] = value
