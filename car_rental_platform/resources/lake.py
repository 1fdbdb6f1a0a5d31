"""The lake: a folder on disk or an S3 bucket, with the same zone layout (DESIGN 3.4)."""

from __future__ import annotations

import shutil
from abc import ABC, abstractmethod
from pathlib import Path

import dagster as dg
from pydantic import Field

from spark_jobs.contract import Zone, table_path


class LakeStorage(dg.ConfigurableResource, ABC):
    """Where tables live. Zone folder names are settings with the DESIGN 3.4 defaults."""

    raw_prefix: str = Field(default=Zone.RAW.value, description="Folder of the raw zone.")
    processed_prefix: str = Field(default=Zone.PROCESSED.value, description="Processed zone.")
    kpi_prefix: str = Field(default=Zone.KPI.value, description="Folder of the KPI tables.")
    analyses_prefix: str = Field(default=Zone.ANALYSES.value, description="Analyses tables.")

    @property
    @abstractmethod
    def root_uri(self) -> str:
        """The lake root as the Spark jobs see it: an absolute path or ``s3://bucket``."""

    def prefix(self, zone: Zone | str) -> str:
        """The configured folder name of a zone."""
        configured = {
            Zone.RAW: self.raw_prefix,
            Zone.PROCESSED: self.processed_prefix,
            Zone.KPI: self.kpi_prefix,
            Zone.ANALYSES: self.analyses_prefix,
        }
        return configured.get(Zone(zone), str(zone))

    def table_uri(self, zone: Zone | str, table: str) -> str:
        return table_path(self.root_uri, self.prefix(zone), table)

    def spark_args(self) -> list[str]:
        """Lake root and zone names as arguments of the spark_jobs scripts."""
        return [
            "--lake-root",
            self.root_uri,
            "--raw-zone",
            self.raw_prefix,
            "--processed-zone",
            self.processed_prefix,
            "--kpi-zone",
            self.kpi_prefix,
        ]

    @abstractmethod
    def put_files(self, files: dict[str, Path], zone: Zone | str, table: str) -> str:
        """Replace the contents of ``<zone>/<table>/`` by these files (name -> local path).

        Files are written in the order given, so the last one can mark the set complete;
        returns the folder's URI.
        """

    @abstractmethod
    def write_bytes(self, data: bytes, relative_key: str) -> str:
        """Write ``<root>/<relative_key>`` (replacing it); return its URI."""

    @abstractmethod
    def delete_prefix(self, relative_prefix: str) -> None:
        """Delete everything under ``<root>/<relative_prefix>``."""

    @abstractmethod
    def list_tables(self, zone: Zone | str) -> list[str]:
        """Table folders of a zone that hold at least one Parquet file."""


class LocalLake(LakeStorage):
    """A lake in a local folder: the same layout as the bucket."""

    root: str = Field(description="Folder of the lake; created when missing.")

    @property
    def root_uri(self) -> str:
        return str(Path(self.root).expanduser().resolve())

    def _path(self, relative: str) -> Path:
        return Path(self.root_uri, relative)

    def put_files(self, files: dict[str, Path], zone: Zone | str, table: str) -> str:
        """Copy into a sibling folder, then swap it in: a reader sees the old set or the new."""
        folder = Path(self.table_uri(zone, table))
        staging = folder.with_name(f".{folder.name}.landing")
        aside = folder.with_name(f".{folder.name}.replaced")
        for leftover in (staging, aside):
            if leftover.exists():
                shutil.rmtree(leftover)
        staging.mkdir(parents=True)
        for name, local_path in files.items():
            shutil.copyfile(local_path, staging / name)
        if folder.exists():
            folder.rename(aside)
        staging.rename(folder)
        if aside.exists():
            shutil.rmtree(aside)
        return str(folder)

    def write_bytes(self, data: bytes, relative_key: str) -> str:
        target = self._path(relative_key)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        return str(target)

    def delete_prefix(self, relative_prefix: str) -> None:
        target = self._path(relative_prefix)
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()

    def list_tables(self, zone: Zone | str) -> list[str]:
        folder = self._path(self.prefix(zone))
        if not folder.is_dir():
            return []
        return sorted(
            p.name
            for p in folder.iterdir()
            if p.is_dir() and not p.name.startswith((".", "_")) and any(p.rglob("*.parquet"))
        )
