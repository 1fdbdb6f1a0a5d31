"""One landed CSV export to the raw zone's canonical copy (``spark_jobs.raw_format``).

Landing is the one place that splits an export into records, so a file is decoded and parsed
once, its problems are named by line, and nothing in it can vanish: every line with anything
on it, even a space or a NUL, is a record (well-formed or not); only empty lines are not.

Decoding: a byte-order mark decides (UTF-8, UTF-16, UTF-32); without one, the file's
configured encoding (default UTF-8). Bytes that do not decode fail the landing with the file,
line, column and byte offset, and the setting that would read them.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from spark_jobs.contract import (
    LANDED_FOLDER,
    RENTALS,
    SOURCE_TABLES,
    ExportNameError,
    RawSchemaError,
    SourceTable,
    Zone,
    batch_folder,
    check_header,
    rental_batch,
    table_path,
)
from spark_jobs.raw_format import MANIFEST, Manifest, canonical_columns

ENCODING_SETTING = "CAR_RENTAL_SOURCE_ENCODING"
BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
"""Longest first: the UTF-32 LE mark starts with the UTF-16 LE one."""
EOF_MARKER = "\x1a"
FIELD_SIZE_LIMIT = 1 << 30
"""Python's csv refuses fields over 128 KiB by default; an export's free text may be longer."""
MAX_RECORD_LINES = 100
"""A quoted field may span at most this many lines; past it the quote is taken as a stray."""


class RawEncodingError(ValueError):
    """An export's bytes are not text in its encoding: names the file, line and byte offset."""


@dataclass(frozen=True)
class Landed:
    """One export, checked and copied: the canonical file and its manifest."""

    canonical: Path
    manifest: Manifest


def detect_encoding(path: Path, configured: str) -> str:
    """The byte-order mark's encoding, else the configured one."""
    with path.open("rb") as handle:
        start = handle.read(4)
    for bom, encoding in BOMS:
        if start.startswith(bom):
            return encoding
    return "utf-8-sig" if codecs.lookup(configured).name == "utf-8" else configured


def decode_error(
    path: Path, source: str, encoding: str, error: UnicodeDecodeError, file_name: str
) -> str:
    """Locate the first undecodable byte of the file: line, column and absolute offset."""
    name = encoding.removesuffix("-sig")
    bad, value = _first_bad_byte(path, encoding)
    if bad is None:
        return f"{source} is not valid {name} text: {error}"
    with path.open("rb") as handle:
        head = handle.read(bad)
    line = head.count(b"\n") + 1
    column = bad - (head.rfind(b"\n") + 1) + 1
    return (
        f"{source} is not valid {name} text: byte(s) 0x{value} at line {line}, column {column} "
        f"(byte offset {bad}). Re-export the file as UTF-8, or name its encoding: "
        f"{ENCODING_SETTING}={file_name}=cp1252 (that file) or {ENCODING_SETTING}=cp1252 "
        "(every file); any Python codec name works."
    )


def _first_bad_byte(path: Path, encoding: str) -> tuple[int | None, str]:
    """Offset and hex of the first bytes the encoding rejects, reading 1 MiB at a time."""
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    offset = 0
    with path.open("rb") as handle:
        while True:
            chunk = handle.read(1 << 20)
            pending = len(decoder.getstate()[0])
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as located:
                value = located.object[located.start : located.end].hex(" ")
                return offset - pending + located.start, value
            if not chunk:
                return None, ""
            offset += len(chunk)


def _physical_lines(text: TextIO) -> Iterator[tuple[int, str]]:
    """(line number, line without its terminator: CR LF, LF or CR)."""
    for number, line in enumerate(text, start=1):
        yield number, line.rstrip("\r\n")


@dataclass
class _Counts:
    records: int = 0
    malformed: int = 0
    empty_lines: int = 0
    multiline: int = 0
    eof_marker_removed: bool = False


def _fields(text: str) -> list[str]:
    return text.split(",") if '"' not in text else next(csv.reader([text]))


def _strict_fields(text: str) -> list[str]:
    """Fields of a record whose quoted fields may span lines; [] when it is not one.

    Strict RFC 4180: a quote opens a field only at its start and closes it only before a
    comma or the end, so two stray quotes in a column (``12" x`` ... ``14" y``) never join the
    lines between them into one record.
    """
    try:
        return next(csv.reader([text], strict=True))
    except csv.Error:
        return []


def _problem(text: str, fields: int, width: int) -> str:
    if not text.strip(" \t\x00\x1a\x0b\x0c"):
        return "the line holds only spaces or control characters"
    if text.count('"') % 2:
        return f"a quote opened on this line is never closed ({fields} fields, expected {width})"
    return f"{fields} fields, expected {width}"


def split_records(
    lines: Iterator[tuple[int, str]], width: int, counts: _Counts
) -> Iterator[tuple[int, list[str] | None, str]]:
    """(first line, fields or None when malformed, text) per record, in file order.

    A line with an odd number of quotes opens a quoted field: following lines join it until
    the quotes balance. If the joined text is a strict RFC 4180 record of the right width it
    is one record spanning lines; otherwise the opening line is read alone (a record if a
    mid-field quote is its only oddity, else malformed) and the next lines are read again as
    records of their own, so one stray quote costs one line, not the rest of the file.
    """
    queue: deque[tuple[int, str]] = deque()
    source = iter(lines)

    def next_line() -> tuple[int, str] | None:
        return queue.popleft() if queue else next(source, None)

    while (item := next_line()) is not None:
        number, text = item
        if not text:
            counts.empty_lines += 1
            continue
        if text.count('"') % 2:
            joined, taken = [text], []
            while len(joined) < MAX_RECORD_LINES and (more := next_line()) is not None:
                taken.append(more)
                joined.append(more[1])
                if sum(part.count('"') for part in joined) % 2 == 0:
                    break
            whole = "\n".join(joined)
            fields = _strict_fields(whole) if whole.count('"') % 2 == 0 else []
            if len(fields) == width:
                counts.multiline += 1
                yield number, fields, whole
                continue
            queue.extendleft(reversed(taken))
            fields = _fields(text)  # alone: a mid-field quote (12" wide) is just a character
            yield number, (fields if len(fields) == width else None), text
            continue
        fields = _fields(text)
        yield number, (fields if len(fields) == width else None), text


def land(
    path: Path, table: SourceTable, source: str, target: Path, configured_encoding: str = "utf-8"
) -> Landed:
    """Check the header, split the export into records and write the canonical copy.

    Raises RawSchemaError (no header, wrong columns) and RawEncodingError (undecodable bytes);
    either way nothing is written to the lake by the caller.
    """
    encoding = detect_encoding(path, configured_encoding)
    csv.field_size_limit(max(csv.field_size_limit(), FIELD_SIZE_LIMIT))
    counts = _Counts()
    width = len(table.columns)
    try:
        with (
            path.open("rb") as binary,
            io.TextIOWrapper(binary, encoding=encoding, newline="") as text,
            target.open("w", encoding="utf-8", newline="") as out,
        ):
            lines = _strip_eof_marker(_physical_lines(text), counts)
            header_line = next(((n, t) for n, t in lines if t), None)
            if header_line is None:
                raise RawSchemaError(
                    f"{source} is empty: no header row. A file with no rows still needs its "
                    f"header line: {','.join(table.column_names)}"
                )
            header = next(csv.reader([header_line[1]]))
            if any("\x00" in name for name in header):
                raise RawEncodingError(
                    f"{source}: the header holds NUL bytes, as UTF-16 text read as "
                    f"{encoding} does. Set {ENCODING_SETTING}={table.file_name}=utf-16-le (or -be)."
                )
            if len(header) == 1:
                for separator, name in (("\t", "tabs"), (";", "semicolons")):
                    if separator in header[0]:
                        raise RawSchemaError(
                            f"{source}: the header is separated by {name}, not commas. "
                            "Export the file as CSV (comma-separated values)."
                        )
            check_header(table, header, source)
            order = [header.index(name) for name in table.column_names]
            identity = order == list(range(width))
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(canonical_columns(table))
            blanks = [""] * width
            for number, fields, original in split_records(lines, width, counts):
                counts.records += 1
                if fields is None:
                    counts.malformed += 1
                    problem = _problem(original, len(_fields(original)), width)
                    writer.writerow([number, *blanks, original, problem])
                elif identity and '"' not in original:
                    out.write(f"{number},{original},,\n")
                else:
                    writer.writerow([number, *(fields[i] for i in order), "", ""])
    except UnicodeDecodeError as error:
        raise RawEncodingError(
            decode_error(path, source, encoding, error, table.file_name)
        ) from error
    manifest = Manifest(
        source=source,
        file_name=table.file_name,
        encoding=encoding.removesuffix("-sig") if encoding == "utf-8-sig" else encoding,
        records=counts.records,
        malformed=counts.malformed,
        empty_lines=counts.empty_lines,
        multiline_records=counts.multiline,
        eof_marker_removed=counts.eof_marker_removed,
        size_bytes=path.stat().st_size,
        sha256=file_sha256(path),
    )
    return Landed(target, manifest)


def _strip_eof_marker(
    lines: Iterator[tuple[int, str]], counts: _Counts
) -> Iterator[tuple[int, str]]:
    """Drop Ctrl-Z bytes ending the file (a DOS end-of-file marker), keep any elsewhere."""
    previous: tuple[int, str] | None = None
    for item in lines:
        if previous is not None:
            yield previous
        previous = item
    if previous is not None:
        number, text = previous
        if text.endswith(EOF_MARKER):
            counts.eof_marker_removed = True
            text = text.rstrip(EOF_MARKER)
            if not text:
                return  # the marker was the whole last line: not an empty line either
        yield number, text


def file_sha256(path: Path) -> str:
    """The digest a landing manifest records of its export (``Manifest.sha256``)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def landed_manifest(lake_root: str, file_name: str) -> Manifest | None:
    """The manifest of export ``file_name``'s current copy in a local lake's raw zone: its
    batch's (rentals) or its newest landing's (snapshots). None when it never landed, when the
    name is no export's, or when the manifest cannot be read (a copy to land again)."""
    try:
        batch = rental_batch(file_name)
    except ExportNameError:
        return None  # landing names the error; here the export is only not landed
    if batch is not None:
        raw = Path(table_path(lake_root, Zone.RAW.value, RENTALS.raw_name))
        manifests = [raw / batch_folder(batch) / MANIFEST]
    else:
        table = next((t for t in SOURCE_TABLES if t.file_name == file_name), None)
        if table is None:
            return None
        raw = Path(table_path(lake_root, Zone.RAW.value, table.raw_name))
        manifests = sorted(raw.glob(f"{LANDED_FOLDER}*/{MANIFEST}"))[-1:]  # the newest
    try:
        return next((Manifest.from_json(m.read_text()) for m in manifests if m.is_file()), None)
    except (OSError, ValueError, TypeError):
        return None
