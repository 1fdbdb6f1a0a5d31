"""The raw zone's file format: what landing writes and the transform reads (pure Python).

Landing splits each export into records once, the way a CSV reader does (RFC 4180: a quoted
field may span lines), and writes a canonical copy: UTF-8, one header, the contract's columns
in contract order between a leading ``_line`` and trailing ``_malformed``/``_problem``
columns. Every record of the export is one row of the copy, so the transform's CSV reader
reproduces landing's records exactly and conservation counts the same records on both sides:

- a well-formed record: its line number and its values, ``_malformed`` and ``_problem`` empty;
- a line that is not a record of the right width (wrong field count, a stray quote, a line of
  only spaces or NULs): its line number, empty values, its original text in ``_malformed``
  and why in ``_problem``.

Beside the copy, ``landing.json`` (the manifest) says where the export came from, its
encoding, how many records it held and whether any spans lines (the copy is then read in
multi-line mode). It is written after the copy, so a copy without a manifest is incomplete.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

from spark_jobs.contract import SourceTable

LINE = "_line"
"""Line of the export where the record starts (1 is the header)."""
MALFORMED = "_malformed"
"""The original text of a line that is not a well-formed record; empty otherwise."""
PROBLEM = "_problem"
"""Why that line is not a record, e.g. ``3 fields, expected 8``."""
MANIFEST = "landing.json"
"""Not ``_landing.json``: Spark and Hadoop skip files whose name starts with ``_``."""


def canonical_columns(table: SourceTable) -> tuple[str, ...]:
    return (LINE, *table.column_names, MALFORMED, PROBLEM)


@dataclass(frozen=True)
class Manifest:
    """What landing learned about one export; ``records`` is what conservation counts."""

    source: str
    """Where the export was read from (landing folder path or s3 URI)."""
    file_name: str
    encoding: str
    records: int
    """Records of the export: well-formed ones plus malformed lines (empty lines are none)."""
    malformed: int
    empty_lines: int
    multiline_records: int
    """Records with a quoted field that spans lines: the copy is read in multi-line mode."""
    eof_marker_removed: bool
    """A trailing Ctrl-Z (DOS end-of-file byte) was dropped: it is not data."""
    size_bytes: int
    sha256: str
    """Of the export as landed, before re-encoding."""

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        return cls(**json.loads(text))


def combined(manifests: list[Manifest]) -> Manifest:
    """One manifest for the batches of one table read together (the rentals exports).

    Counts add up; ``sha256`` digests the batches' digests in order, so it changes when any
    batch does; ``source`` names the first and last export.
    """
    if len(manifests) == 1:
        return manifests[0]
    first, last = manifests[0], manifests[-1]
    digest = hashlib.sha256("".join(m.sha256 for m in manifests).encode()).hexdigest()
    return Manifest(
        source=f"{len(manifests)} exports: {first.source} ... {last.source}",
        file_name=first.file_name,
        encoding=", ".join(dict.fromkeys(m.encoding for m in manifests)),
        records=sum(m.records for m in manifests),
        malformed=sum(m.malformed for m in manifests),
        empty_lines=sum(m.empty_lines for m in manifests),
        multiline_records=sum(m.multiline_records for m in manifests),
        eof_marker_removed=any(m.eof_marker_removed for m in manifests),
        size_bytes=sum(m.size_bytes for m in manifests),
        sha256=digest,
    )
