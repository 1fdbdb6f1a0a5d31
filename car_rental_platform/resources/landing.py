"""Where the marketplace drops its CSV exports: a local folder, or an S3 prefix on AWS."""

from __future__ import annotations

import codecs
import shutil
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
from pydantic import Field


@dataclass(frozen=True)
class LandedFile:
    """A landed file and what tells one version from the next (the sensor's cursor)."""

    name: str
    size: int
    version: str
    """mtime for a local file, ETag + last-modified for an S3 object."""


class MissingSourceFileError(FileNotFoundError):
    """A raw input is not in the landing area: names the file and where it was looked for."""


class Landing(dg.ConfigurableResource, ABC):
    encoding: str = Field(
        default="utf-8",
        description=(
            "Encoding of exports without a byte-order mark (CAR_RENTAL_SOURCE_ENCODING): "
            "a Python codec for every file (cp1252), per file (users.csv=cp1252), or both "
            "(utf-8,users.csv=cp1252). A UTF-8/16/32 byte-order mark always wins."
        ),
    )

    def encoding_of(self, file_name: str) -> str:
        """The configured encoding of one export; fails naming the setting when unknown."""
        default, per_file = "utf-8", {}
        for part in (p.strip() for p in self.encoding.split(",")):
            name, _, codec = part.rpartition("=")
            if name:
                per_file[name.strip()] = codec.strip()
            elif codec:
                default = codec
        chosen = per_file.get(file_name, default)
        try:
            codecs.lookup(chosen)
        except LookupError:
            raise ValueError(
                f"CAR_RENTAL_SOURCE_ENCODING={self.encoding!r}: {chosen!r} is not an encoding "
                "Python knows (e.g. utf-8, cp1252, latin-1, utf-16)"
            ) from None
        return chosen

    @property
    @abstractmethod
    def location(self) -> str:
        """Human-readable place (folder or s3 URI), for messages."""

    @abstractmethod
    def list_csv(self) -> list[LandedFile]:
        """The CSV files present now, sorted by name."""

    @abstractmethod
    def fetch(self, name: str, target: Path) -> Path:
        """Copy one landed file to a local path (raises MissingSourceFileError)."""


class LocalLanding(Landing):
    """CSV exports in a local folder (``CAR_RENTAL_SOURCE_DIR``)."""

    source_dir: str = Field(description="Folder holding the four raw CSV files.")

    @property
    def location(self) -> str:
        return str(Path(self.source_dir).expanduser().resolve())

    def list_csv(self) -> list[LandedFile]:
        folder = Path(self.location)
        if not folder.is_dir():
            return []
        return [
            LandedFile(p.name, p.stat().st_size, str(p.stat().st_mtime_ns))
            for p in sorted(folder.glob("*.csv"))
            if p.is_file()
        ]

    def fetch(self, name: str, target: Path) -> Path:
        source = Path(self.location, name)
        if not source.is_file():
            raise MissingSourceFileError(f"{name} not found in {self.location}")
        shutil.copyfile(source, target)
        return target
