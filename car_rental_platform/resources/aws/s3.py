"""The lake and the landing area in S3: the same layout and contract as the local folders."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError
from pydantic import Field

from car_rental_platform.resources.aws.clients import AwsConnection, error_code, list_keys
from car_rental_platform.resources.lake import LakeStorage
from car_rental_platform.resources.landing import LandedFile, Landing, MissingSourceFileError
from spark_jobs.contract import Zone

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

DELETE_BATCH = 1000
"""DeleteObjects takes at most 1,000 keys per call."""
BOOKKEEPING_MARKERS = ("_$folder$",)
"""EMRFS folder markers: objects that are not data."""


class S3Lake(LakeStorage, AwsConnection):
    """A lake in ``s3://<bucket>/``: zone folders as in DESIGN 3.4, read and written by EMR."""

    bucket: str = Field(description="The lake bucket (CAR_RENTAL_BUCKET), without s3://.")

    @property
    def root_uri(self) -> str:
        return f"s3://{self.bucket}"

    def get_client(self) -> S3Client:
        return self.aws_client("s3")

    def _uri(self, key: str) -> str:
        return f"{self.root_uri}/{key}"

    def put_files(self, files: dict[str, Path], zone: Zone | str, table: str) -> str:
        """Upload the new objects (each PUT replaces its key atomically), then delete the rest.

        Objects the new set does not have go last, so the folder is never empty in between.
        """
        folder = f"{self.prefix(zone)}/{table}/"
        s3 = self.get_client()
        before = {item["Key"] for item in list_keys(s3, self.bucket, folder)}
        for name, local_path in files.items():
            s3.upload_file(str(local_path), self.bucket, folder + name)
        self._delete_keys(s3, sorted(before - {folder + name for name in files}), folder)
        return self._uri(folder.rstrip("/"))

    def write_bytes(self, data: bytes, relative_key: str) -> str:
        key = relative_key.lstrip("/")
        self.get_client().put_object(Bucket=self.bucket, Key=key, Body=data)
        return self._uri(key)

    def delete_prefix(self, relative_prefix: str) -> None:
        """Delete like a path: ``a/b`` removes the object ``a/b`` and everything in ``a/b/``.

        A bare string prefix would also match ``a/bc/``: a sibling table must never go.
        """
        s3 = self.get_client()
        prefix = relative_prefix.lstrip("/")
        if not prefix:
            raise ValueError("refusing to delete the whole lake bucket")
        folder = prefix if prefix.endswith("/") else prefix + "/"
        keys = [item["Key"] for item in list_keys(s3, self.bucket, folder)]
        if not prefix.endswith("/"):
            keys += [
                item["Key"] for item in list_keys(s3, self.bucket, prefix) if item["Key"] == prefix
            ]
        self._delete_keys(s3, keys, prefix)

    def _delete_keys(self, s3: S3Client, keys: list[str], prefix: str) -> None:
        """DeleteObjects in batches; any key S3 refuses fails the call, naming the prefix."""
        for start in range(0, len(keys), DELETE_BATCH):
            batch = keys[start : start + DELETE_BATCH]
            response = s3.delete_objects(
                Bucket=self.bucket,
                Delete={"Objects": [{"Key": key} for key in batch], "Quiet": True},
            )
            if response.get("Errors"):
                first = response["Errors"][0]
                raise OSError(
                    f"could not delete {len(response['Errors'])} object(s) under "
                    f"{self._uri(prefix)}, e.g. {first.get('Key')}: {first.get('Message')}"
                )

    def list_tables(self, zone: Zone | str) -> list[str]:
        zone_prefix = f"{self.prefix(zone)}/"
        tables = set()
        for item in list_keys(self.get_client(), self.bucket, zone_prefix):
            relative = item["Key"][len(zone_prefix) :]
            table, _, rest = relative.partition("/")
            if table and rest.endswith(".parquet") and not rest.endswith(BOOKKEEPING_MARKERS):
                tables.add(table)
        return sorted(tables)


class S3Landing(Landing, AwsConnection):
    """CSV exports dropped under ``s3://<bucket>/<prefix>`` (files directly in the prefix)."""

    bucket: str = Field(description="Bucket the marketplace drops its exports into.")
    prefix: str = Field(
        default="landing/",
        description="Key prefix of the exports (CAR_RENTAL_LANDING_PREFIX); '' for the root.",
    )

    def get_client(self) -> S3Client:
        return self.aws_client("s3")

    @property
    def _prefix(self) -> str:
        prefix = self.prefix.strip("/")
        return f"{prefix}/" if prefix else ""

    @property
    def location(self) -> str:
        return f"s3://{self.bucket}/{self._prefix}"

    def list_csv(self) -> list[LandedFile]:
        """CSV objects directly under the prefix; the version is ETag + last-modified."""
        files = []
        for item in list_keys(self.get_client(), self.bucket, self._prefix):
            name = item["Key"][len(self._prefix) :]
            if "/" in name or not name.lower().endswith(".csv"):
                continue
            version = f"{item['ETag'].strip(chr(34))}@{item['LastModified'].isoformat()}"
            files.append(LandedFile(name=name, size=int(item["Size"]), version=version))
        return sorted(files, key=lambda landed: landed.name)

    def fetch(self, name: str, target: Path) -> Path:
        key = self._prefix + name
        try:
            self.get_client().download_file(self.bucket, key, str(target))
        except ClientError as error:
            if error_code(error) in {"404", "NoSuchKey", "NoSuchBucket"}:
                raise MissingSourceFileError(
                    f"{name} not found: no object s3://{self.bucket}/{key}"
                ) from error
            raise
        return target
