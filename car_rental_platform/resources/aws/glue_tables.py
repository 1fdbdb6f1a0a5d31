"""Register lake Parquet folders as Glue tables: columns from the Parquet footer, partitions listed.

What the Athena IO manager needs after writing a table: create or update the Glue table over
``location`` with the columns of its newest Parquet file (read from S3 with boto3, footer only),
partition keys from the partition types, and one Glue partition per ``<column>=<value>`` folder
present (missing ones added with BatchCreatePartition, vanished ones deleted).
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.parquet as pq
from botocore.exceptions import ClientError

from car_rental_platform.resources.aws.clients import error_code, list_keys, parse_s3_uri
from car_rental_platform.resources.aws.errors import TableRegistrationError
from car_rental_platform.resources.query import validate_identifier

if TYPE_CHECKING:
    from mypy_boto3_glue import GlueClient
    from mypy_boto3_s3 import S3Client

PARQUET_MAGIC = b"PAR1"
FOOTER_TAIL = 8
"""A Parquet file ends with the footer length (4 bytes, little-endian) and ``PAR1``."""
CREATE_PARTITION_BATCH = 100
DELETE_PARTITION_BATCH = 25
INPUT_FORMAT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
OUTPUT_FORMAT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
PARTITION_TYPES = {"DATE": "date", "VARCHAR": "string", "STRING": "string", "BIGINT": "bigint"}
"""SQL type of a partition column (io_manager.partition_types) -> Glue type."""


def glue_type(arrow_type: pa.DataType) -> str:
    """The Hive/Glue type Athena reads an Arrow (Parquet) column as."""
    t = arrow_type
    if pa.types.is_dictionary(t):
        return glue_type(t.value_type)
    simple = [
        (pa.types.is_boolean, "boolean"),
        (pa.types.is_int8, "tinyint"),
        (pa.types.is_int16, "smallint"),
        (pa.types.is_int32, "int"),
        (pa.types.is_int64, "bigint"),
        (pa.types.is_uint8, "smallint"),
        (pa.types.is_uint16, "int"),
        (pa.types.is_uint32, "bigint"),
        (pa.types.is_uint64, "decimal(20,0)"),
        (pa.types.is_float16, "float"),
        (pa.types.is_float32, "float"),
        (pa.types.is_float64, "double"),
        (pa.types.is_date, "date"),
        (pa.types.is_timestamp, "timestamp"),
        (pa.types.is_string, "string"),
        (pa.types.is_large_string, "string"),
        (pa.types.is_binary, "binary"),
        (pa.types.is_large_binary, "binary"),
        (pa.types.is_null, "string"),
    ]
    for test, name in simple:
        if test(t):
            return name
    if pa.types.is_decimal(t):
        return f"decimal({t.precision},{t.scale})"
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return f"array<{glue_type(t.value_type)}>"
    if pa.types.is_map(t):
        return f"map<{glue_type(t.key_type)},{glue_type(t.item_type)}>"
    if pa.types.is_struct(t):
        fields = ",".join(
            f"{t.field(i).name}:{glue_type(t.field(i).type)}" for i in range(t.num_fields)
        )
        return f"struct<{fields}>"
    raise TableRegistrationError(f"no Glue type for the Parquet type {t}")


def read_parquet_schema(s3: S3Client, bucket: str, key: str) -> pa.Schema:
    """The schema from the file's footer, fetched with two ranged GETs (not the whole file)."""
    tail = s3.get_object(Bucket=bucket, Key=key, Range=f"bytes=-{FOOTER_TAIL}")["Body"].read()
    if len(tail) != FOOTER_TAIL or tail[4:] != PARQUET_MAGIC:
        raise TableRegistrationError(f"s3://{bucket}/{key} is not a Parquet file")
    footer_length = struct.unpack("<I", tail[:4])[0]
    footer = s3.get_object(Bucket=bucket, Key=key, Range=f"bytes=-{footer_length + FOOTER_TAIL}")[
        "Body"
    ].read()
    return pq.read_schema(pa.BufferReader(PARQUET_MAGIC + footer))


def parquet_objects(s3: S3Client, location: str) -> list[dict[str, Any]]:
    bucket, prefix = parse_s3_uri(location)
    folder = prefix.rstrip("/") + "/"
    return [
        item
        for item in list_keys(s3, bucket, folder)
        if item["Key"].endswith(".parquet") and item.get("Size", 0) > 0
    ]


def partition_folders(
    keys: Sequence[str], folder: str, partition_keys: Sequence[str]
) -> dict[tuple[str, ...], str]:
    """Partition values -> folder (``k1=v1/k2=v2/``, in partition-key order) of folders with files.

    Values are unescaped as Hive escapes them in folder names (``%20`` -> space).
    """
    found = {}
    for key in keys:
        parts = key[len(folder) :].split("/")[: len(partition_keys)]
        pairs = [part.partition("=") for part in parts]
        if len(pairs) == len(partition_keys) and all(
            sep and name == expected
            for (name, sep, _), expected in zip(pairs, partition_keys, strict=True)
        ):
            values = tuple(unquote(value) for _, _, value in pairs)
            found[values] = "".join(f"{part}/" for part in parts)
    return found


def storage_descriptor(columns: list[dict[str, str]], location: str) -> dict[str, Any]:
    return {
        "Columns": columns,
        "Location": location,
        "InputFormat": INPUT_FORMAT,
        "OutputFormat": OUTPUT_FORMAT,
        "SerdeInfo": {"SerializationLibrary": SERDE, "Parameters": {"serialization.format": "1"}},
    }


def table_input(
    *, table: str, location: str, schema: pa.Schema, partition_types: Mapping[str, str]
) -> dict[str, Any]:
    """The Glue ``TableInput`` of a Parquet table (names validated)."""
    validate_identifier(table, "table name")
    partition_keys = [
        {"Name": validate_identifier(name, "partition column"), "Type": _partition_type(kind)}
        for name, kind in partition_types.items()
    ]
    columns = [
        {"Name": validate_identifier(f.name, "column name"), "Type": glue_type(f.type)}
        for f in schema
        if f.name not in partition_types
    ]
    return {
        "Name": table,
        "TableType": "EXTERNAL_TABLE",
        "Parameters": {"classification": "parquet", "EXTERNAL": "TRUE"},
        "PartitionKeys": partition_keys,
        "StorageDescriptor": storage_descriptor(columns, location),
    }


def _partition_type(kind: str) -> str:
    try:
        return PARTITION_TYPES[kind.upper()]
    except KeyError:
        raise TableRegistrationError(
            f"partition type {kind!r} is not one of {sorted(PARTITION_TYPES)}"
        ) from None


def register_parquet_table(
    *,
    glue: GlueClient,
    s3: S3Client,
    database: str,
    table: str,
    location: str,
    partition_types: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Create or update the table and sync its partitions; return the TableInput used."""
    partition_types = dict(partition_types or {})
    folder_uri = location.rstrip("/") + "/"
    bucket, folder = parse_s3_uri(folder_uri)
    objects = parquet_objects(s3, folder_uri)
    if not objects:
        raise TableRegistrationError(f"no Parquet files under {folder_uri}: nothing to register")
    newest = max(objects, key=lambda item: item["LastModified"])
    schema = read_parquet_schema(s3, bucket, newest["Key"])
    definition = table_input(
        table=table, location=folder_uri, schema=schema, partition_types=partition_types
    )
    _ensure_database(glue, database)
    try:
        glue.create_table(DatabaseName=database, TableInput=definition)
    except ClientError as error:
        if error_code(error) != "AlreadyExistsException":
            raise
        glue.update_table(DatabaseName=database, TableInput=definition)
    if partition_types:
        present = partition_folders([o["Key"] for o in objects], folder, list(partition_types))
        _sync_partitions(glue, database, definition, folder_uri, present)
    return definition


def _ensure_database(glue: GlueClient, database: str) -> None:
    try:
        glue.get_database(Name=database)
    except ClientError as error:
        if error_code(error) != "EntityNotFoundException":
            raise
        try:
            glue.create_database(DatabaseInput={"Name": database})
        except ClientError as create_error:
            if error_code(create_error) != "AlreadyExistsException":
                raise


def _sync_partitions(
    glue: GlueClient,
    database: str,
    definition: Mapping[str, Any],
    folder_uri: str,
    present: Mapping[tuple[str, ...], str],
) -> None:
    table = definition["Name"]
    pages = glue.get_paginator("get_partitions").paginate(DatabaseName=database, TableName=table)
    registered = {tuple(p["Values"]) for page in pages for p in page["Partitions"]}
    columns = definition["StorageDescriptor"]["Columns"]
    missing = sorted(set(present) - registered)
    for start in range(0, len(missing), CREATE_PARTITION_BATCH):
        inputs = [
            {
                "Values": list(values),
                "StorageDescriptor": storage_descriptor(columns, folder_uri + present[values]),
            }
            for values in missing[start : start + CREATE_PARTITION_BATCH]
        ]
        response = glue.batch_create_partition(
            DatabaseName=database, TableName=table, PartitionInputList=inputs
        )
        _raise_partition_errors(response, table, "create", ignore={"AlreadyExistsException"})
    stale = sorted(registered - set(present))
    for start in range(0, len(stale), DELETE_PARTITION_BATCH):
        response = glue.batch_delete_partition(
            DatabaseName=database,
            TableName=table,
            PartitionsToDelete=[
                {"Values": list(values)} for values in stale[start : start + DELETE_PARTITION_BATCH]
            ],
        )
        _raise_partition_errors(response, table, "delete", ignore={"EntityNotFoundException"})


def _raise_partition_errors(
    response: Mapping[str, Any], table: str, action: str, *, ignore: set[str]
) -> None:
    errors = [
        e for e in response.get("Errors", []) if e["ErrorDetail"].get("ErrorCode") not in ignore
    ]
    if errors:
        first = errors[0]
        raise TableRegistrationError(
            f"could not {action} {len(errors)} partition(s) of {table}, e.g. "
            f"{first.get('PartitionValues')}: {first['ErrorDetail'].get('ErrorMessage')}"
        )
