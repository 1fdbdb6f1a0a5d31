"""Raw CSV rows to typed, trimmed rows, with every unusable row kept in ``rejected_rows``.

Each raw row gets at most one reason, first match wins: malformed line, missing required
value, unparseable value, a number out of its type's range (or above the contract's maximum),
a table rule (end not after start, negative amount, coordinates out
of range), then duplicate key among the rows that passed everything else (the first in file
order is kept). Rows in = rows kept + rows rejected, for every input.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import reduce

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from spark_jobs.contract import (
    BATCH_FOLDER,
    RENTALS,
    RejectReason,
    RentalBatch,
    SourceTable,
    batch_folder,
)
from spark_jobs.contract import (
    Column as ContractColumn,
)
from spark_jobs.lake_files import LakeFiles
from spark_jobs.raw_format import (
    LINE,
    MALFORMED,
    MANIFEST,
    PROBLEM,
    Manifest,
    canonical_columns,
)

CORRUPT = "_corrupt_record"
SOURCE_FILE = "_source_file"
ROW_ORDER = "_row_order"
BATCH_RANK = "_batch_rank"
"""Which export a row came from, as ``RentalBatch.rank`` (0 for a single file): duplicates
are decided by (batch, row order), so the earlier export keeps a repeated key."""
REASON = "_reason"
FIRST_SEEN = "_first_seen"
CANDIDATE = "_candidate_key"
INTEGER_TYPES = frozenset({"int", "bigint", "smallint", "tinyint"})
FLAG_COLUMNS = frozenset({"active", "is_active"})
"""Integer flags whose only valid values are 0 and 1."""


@dataclass(frozen=True)
class Cleaned:
    """One input after cleaning: every raw row, typed, with its reject reason (null if kept)."""

    table: SourceTable
    annotated: DataFrame
    repeated_keys: DataFrame
    """Keys that occur more than once among the valid rows, with their first position."""

    def cache(self) -> Cleaned:
        """Cache the annotated rows (worth it for small inputs read several times)."""
        return Cleaned(self.table, self.annotated.cache(), self.repeated_keys)

    def failing(self) -> Cleaned:
        """Only the rows that have a reject reason (still annotated)."""
        rejected = self.annotated.where(F.col(REASON).isNotNull())
        return Cleaned(self.table, rejected, self.repeated_keys)

    @property
    def kept(self) -> DataFrame:
        """Kept rows in contract column order, with derived columns for rentals."""
        kept = self.annotated.where(F.col(REASON).isNull()).select(*self.table.column_names)
        return with_rental_derivations(kept) if self.table.name == RENTALS.name else kept

    @property
    def rejected(self) -> DataFrame:
        """Rejected rows in the ``rejected_rows`` layout."""
        return self.rejected_with()

    def rejected_with(self, *extra: Column) -> DataFrame:
        """Rejected rows in the ``rejected_rows`` layout, then the ``extra`` columns."""
        return self.annotated.where(F.col(REASON).isNotNull()).select(
            F.lit(self.table.name).alias("source_table"),
            F.col(SOURCE_FILE).alias("source_file"),
            F.col(ROW_ORDER).alias("line"),
            F.col(REASON).alias("reason"),
            rejection_detail(self.table).alias("detail"),
            raw_record(self.table).alias("record"),
            *extra,
        )

    def counts(self) -> dict[str | None, int]:
        """Rows per reason; the key None counts the kept rows."""
        rows = self.annotated.groupBy(REASON).count().collect()
        return {row[REASON]: row["count"] for row in rows}


def raw_record(table: SourceTable) -> Column:
    """The raw line as JSON: its values by column (empty ones too), or the malformed line.

    Built only for rejected rows (after the filter), so kept rows never pay for it.
    """
    values = F.to_json(
        F.struct(*[F.col(raw_alias(c.name)).alias(c.name) for c in table.columns]),
        {"ignoreNullFields": "false"},
    )
    line = F.to_json(F.struct(F.col(CORRUPT).alias("line")))
    return F.when(F.col(CORRUPT).isNotNull(), line).otherwise(values)


def read_manifest(spark: SparkSession, folder: str) -> Manifest:
    """The landing manifest of a raw table folder; its absence means the landing is incomplete."""
    path = f"{folder.rstrip('/')}/{MANIFEST}"
    files = LakeFiles(spark, folder)
    if not files.exists(path):
        raise FileNotFoundError(
            f"{path} not found: {folder} was not landed completely (or by an older version). "
            "Materialize its raw asset again."
        )
    # Read through the file system, not a Spark job: a run over 184 daily exports read 184
    # manifests, each a job of its own (about a second each on a cold JVM).
    return Manifest.from_json(files.read_text(path))


def read_raw(
    spark: SparkSession, table: SourceTable, folder: str, manifest: Manifest | None = None
) -> DataFrame:
    """Read the canonical copy landing wrote (``raw_format``): one row per record of the export.

    Every value stays a string until ``clean`` parses it, so ids such as ``0042`` or
    ``6e61610976`` survive. Multi-line mode only when a record spans lines: it reads each file
    in one task, which the single-line mode does not.
    """
    manifest = manifest or read_manifest(spark, folder)
    raw = _read_copies(spark, table, [f"{folder.rstrip('/')}/{table.file_name}"], [manifest])
    return _with_origin(raw, table, F.lit(manifest.source), F.lit(0))


def read_raw_batches(
    spark: SparkSession,
    table: SourceTable,
    folder: str,
    batches: Sequence[tuple[RentalBatch, Manifest]],
) -> DataFrame:
    """Every landed batch of the rentals (``folder/batch=<key>/``) in one CSV read.

    One scan of many files, not a union of one read per batch: a union of 185 daily reads
    made a plan that exhausted the driver's memory. Each row's batch comes from its file's
    folder, mapped to the batch's rank (contract order) and its export's source.
    """
    paths = [f"{folder.rstrip('/')}/{batch_folder(b)}/{table.file_name}" for b, _ in batches]
    raw = _read_copies(spark, table, paths, [m for _, m in batches])
    key = F.regexp_extract(F.col("_metadata.file_path"), f"/{BATCH_FOLDER}([^/]+)/[^/]+$", 1)
    rank = F.create_map(*[F.lit(x) for b, _ in batches for x in (b.key, b.rank)])
    source = F.create_map(*[F.lit(x) for b, m in batches for x in (b.key, m.source)])
    return _with_origin(raw, table, source[key], rank[key])


def _read_copies(
    spark: SparkSession, table: SourceTable, paths: list[str], manifests: list[Manifest]
) -> DataFrame:
    return (
        spark.read.schema(_raw_schema(canonical_columns(table)))
        .option("header", True)
        .option("multiLine", any(m.multiline_records > 0 for m in manifests))
        .option("escape", '"')  # RFC 4180: a quote inside a quoted field is doubled
        .csv(paths)
    )


def _with_origin(raw: DataFrame, table: SourceTable, source: Column, rank: Column) -> DataFrame:
    return raw.select(
        *table.column_names,
        F.col(MALFORMED).alias(CORRUPT),
        F.col(PROBLEM),
        source.alias(SOURCE_FILE),
        F.col(LINE).cast("long").alias(ROW_ORDER),
        rank.cast("long").alias(BATCH_RANK),
    )


def _raw_schema(names: tuple[str, ...]) -> T.StructType:
    return T.StructType([T.StructField(n, T.StringType()) for n in names])


def parse_value(column: ContractColumn, text: Column, source: str | None = None) -> Column:
    """The typed value of a trimmed string, or null when it does not parse to the contract type.

    ``text`` must be the trimmed value of the DataFrame column ``source`` (default: the
    contract column's own name); the casts are SQL ``try_cast`` so the job also runs on
    Spark 3.5 (EMR 7), where ``Column.try_cast`` is missing.
    """
    kind = column.type
    if kind == "string":
        return text
    if kind == "date":
        return F.to_date(F.try_to_timestamp(text, F.lit(column.format)))
    if kind == "timestamp":
        return F.try_to_timestamp(text, F.lit(column.format))
    trimmed = _trimmed_sql(source or column.name)
    if column.name in FLAG_COLUMNS:
        whole = F.expr(_integral(trimmed))
        digits = F.when(text.isin("0", "1"), text).otherwise(whole)
        return F.when(digits.isin("0", "1"), digits.cast("int"))
    value = F.expr(f"try_cast({trimmed} AS {kind})")
    if kind in INTEGER_TYPES:
        # Spreadsheets and pandas write whole numbers as 2015.0: accepted, 2015.5 is not.
        return F.coalesce(value, F.expr(f"try_cast({_integral(trimmed)} AS {kind})"))
    if kind == "double":
        return F.when(~F.isnan(value) & ~value.isin(float("inf"), float("-inf")), value)
    return value


def _integral(sql: str) -> str:
    """The digits of a whole number written with a zero fraction (``2015.0`` -> ``2015``)."""
    return f"regexp_extract({sql}, '^([+-]?[0-9]+)[.]0*$', 1)"


def _number_too_big(column: ContractColumn, trimmed: str) -> Column | None:
    """Text that is a number but does not fit the column's type (None: no such case)."""
    if column.name in FLAG_COLUMNS:
        return None  # 0 or 1: any other number is not a flag, whatever its size
    if column.type in INTEGER_TYPES:
        return F.coalesce(F.expr(f"{trimmed} RLIKE '^[+-]?[0-9]+([.]0*)?$'"), F.lit(False))
    if column.type.startswith("decimal"):
        number = F.expr(f"try_cast({trimmed} AS double)")
        finite = ~F.isnan(number) & ~number.isin(float("inf"), float("-inf"))  # NaN: unparseable
        return F.coalesce(number.isNotNull() & finite, F.lit(False))
    return None


def _trimmed_sql(name: str) -> str:
    return f"nullif(trim(`{name}`), '')"


def _trimmed(name: str) -> Column:
    return F.expr(_trimmed_sql(name))


def _failures(checks: list[tuple[Column, str]]) -> Column:
    """'; '-joined messages of the failing checks (null when none fails)."""
    messages = F.concat_ws("; ", *[F.when(cond, F.lit(msg)) for cond, msg in checks])
    return F.nullif(messages, F.lit(""))


Rule = tuple[RejectReason, Callable[[dict[str, Column]], Column], str]
RULES: dict[str, list[Rule]] = {
    "rentals": [
        (
            RejectReason.END_NOT_AFTER_START,
            lambda c: c["rental_end_time"] <= c["rental_start_time"],
            "rental_end_time is not after rental_start_time",
        ),
        (
            RejectReason.NEGATIVE_AMOUNT,
            lambda c: c["total_amount"] < 0,
            "total_amount is negative",
        ),
    ],
    "locations": [
        (
            RejectReason.COORDINATES_OUT_OF_RANGE,
            lambda c: (F.abs(c["latitude"]) > 90) | (F.abs(c["longitude"]) > 180),
            "latitude must be within [-90, 90] and longitude within [-180, 180]",
        ),
    ],
}
"""Table rules: (reason, condition on typed columns that marks a bad row, detail)."""


def _any(conditions: list[Column]) -> Column:
    return reduce(Column.__or__, conditions, F.lit(False))


@dataclass(frozen=True)
class Validation:
    """A table's checks, as conditions on the values of one set of DataFrame columns.

    ``annotate`` evaluates them on the raw columns of every row to decide its reason;
    ``rejection_detail`` evaluates them again on the raw copies, for rejected rows only.
    """

    typed: dict[str, Column]
    missing: list[tuple[Column, str]]
    unparseable: list[tuple[Column, str]]
    out_of_range: list[tuple[Column, str]]
    rules: list[tuple[RejectReason, Column, str]]

    @classmethod
    def of(cls, table: SourceTable, source: Callable[[str], str] = str) -> Validation:
        """Checks of ``table`` on the DataFrame column ``source(name)`` of each column."""
        text = {c.name: _trimmed(source(c.name)) for c in table.columns}
        typed = {c.name: parse_value(c, text[c.name], source(c.name)) for c in table.columns}
        missing = [
            (text[c.name].isNull(), f"{c.name} is empty") for c in table.columns if c.required
        ]
        unparseable, out_of_range = [], []
        for c in table.columns:
            if c.type == "string":
                continue
            failed = text[c.name].isNotNull() & typed[c.name].isNull()
            too_big = _number_too_big(c, _trimmed_sql(source(c.name)))
            expected = f"{c.type}{f' ({c.format})' if c.format else ''}"
            unparseable.append(
                (
                    failed if too_big is None else failed & ~too_big,
                    f"{c.name} is not a valid {expected}",
                )
            )
            beyond = failed & too_big if too_big is not None else None
            if c.maximum is not None:
                above = F.coalesce(typed[c.name] > F.lit(c.maximum).cast(c.type), F.lit(False))
                beyond = above if beyond is None else beyond | above
            if beyond is not None:
                limit = f" (at most {c.maximum})" if c.maximum else ""
                out_of_range.append((beyond, f"{c.name} is out of range for {c.type}{limit}"))
        rules = [
            (code, F.coalesce(condition(typed), F.lit(False)), message)
            for code, condition, message in RULES.get(table.name, [])
        ]
        return cls(typed, missing, unparseable, out_of_range, rules)

    def reason(self) -> Column:
        """The first failing reason, decided on boolean conditions only (null when valid)."""
        reason = F.when(F.col(CORRUPT).isNotNull(), F.lit(RejectReason.MALFORMED_LINE.value))
        for code, checks in (
            (RejectReason.MISSING_REQUIRED_VALUE, self.missing),
            (RejectReason.UNPARSEABLE_VALUE, self.unparseable),
            (RejectReason.VALUE_OUT_OF_RANGE, self.out_of_range),
        ):
            if checks:
                reason = reason.when(_any([cond for cond, _ in checks]), F.lit(code.value))
        for code, failed, _ in self.rules:
            reason = reason.when(failed, F.lit(code.value))
        return reason


def annotate(table: SourceTable, raw: DataFrame) -> DataFrame:
    """Every raw row typed, with its raw strings beside and its first failing reason.

    The reason is decided on boolean conditions; a valid row costs its parses and nothing
    more. The detail text is left to ``rejection_detail``, on the rejected rows alone.
    """
    checks = Validation.of(table)
    return raw.select(
        *[checks.typed[c.name].alias(c.name) for c in table.columns],
        *[F.col(c.name).alias(raw_alias(c.name)) for c in table.columns],
        F.col(CORRUPT),
        F.col(PROBLEM),
        F.col(SOURCE_FILE),
        F.col(ROW_ORDER),
        F.col(BATCH_RANK),
        checks.reason().alias(REASON),
    )


def rejection_detail(table: SourceTable) -> Column:
    """Which column or rule made a row fail, with the value where it helps (rejected rows).

    Re-evaluates the checks on the raw copies of the values, so it is only worth computing
    after the rejected rows have been filtered out.
    """
    checks = Validation.of(table, raw_alias)
    reason = F.col(REASON)
    detail = F.when(reason == RejectReason.MALFORMED_LINE.value, F.col(PROBLEM))
    for code, failures in (
        (RejectReason.MISSING_REQUIRED_VALUE, checks.missing),
        (RejectReason.UNPARSEABLE_VALUE, checks.unparseable),
        (RejectReason.VALUE_OUT_OF_RANGE, checks.out_of_range),
    ):
        if failures:
            detail = detail.when(reason == code.value, _failures(failures))
    for code, _, message in checks.rules:
        detail = detail.when(reason == code.value, F.lit(message))
    seen = F.concat(F.lit(f"{table.key} "), F.col(table.key).cast("string"), F.lit(" seen"))
    return detail.when(reason == RejectReason.DUPLICATE_KEY.value, seen)


def clean(table: SourceTable, raw: DataFrame, earlier: DataFrame | None = None) -> Cleaned:
    """Split raw rows (from ``read_raw``) into typed kept rows and rejected rows.

    ``earlier`` (key, ``FIRST_SEEN``) holds the first valid position of keys already seen in
    batches outside ``raw`` (the rentals key index): a row placed after one of them is a
    duplicate too, so a batch cleaned alone decides exactly as when cleaned with all.
    """
    repeated = repeated_keys(table, raw)
    if earlier is not None:
        repeated = (
            repeated.unionByName(earlier.select(table.key, FIRST_SEEN))
            .groupBy(table.key)
            .agg(F.min(FIRST_SEEN).alias(FIRST_SEEN))
        )
    return Cleaned(table, mark_duplicates(annotate(table, raw), repeated, table.key), repeated)


def raw_alias(name: str) -> str:
    """Where the untouched raw string of a column travels beside its typed value."""
    return f"_raw_{name}"


def position() -> Column:
    """A row's place in the input: its export (batch order), then its line in that export."""
    return F.struct(F.col(BATCH_RANK), F.col(SOURCE_FILE), F.col(ROW_ORDER))


def repeated_keys(table: SourceTable, raw: DataFrame) -> DataFrame:
    """Keys occurring more than once among the valid rows, with the first position of each.

    Two cheap passes instead of a window over every row (which shuffles and sorts the whole
    table with all its columns, the cost that dominated the transform): a grouped count of
    the parsed key alone finds the keys seen more than once in any row; only the rows holding
    such a key are then validated, and the first valid position is kept per key. Validity is
    folded into the aggregate rather than filtered on, so Spark cannot move the validation
    ahead of the join onto every row. The result is small and broadcast by ``mark_duplicates``.
    """
    key = table.key
    key_value = Validation.of(table).typed[key]
    seen_twice = (
        raw.select(key_value.alias(CANDIDATE))
        .where(F.col(CANDIDATE).isNotNull())
        .groupBy(CANDIDATE)
        .count()
        .where(F.col("count") > 1)
        .select(CANDIDATE)
    )
    candidates = raw.withColumn(CANDIDATE, key_value).join(
        F.broadcast(seen_twice), CANDIDATE, "left_semi"
    )
    valid = F.col(REASON).isNull()
    return (
        annotate(table, candidates.drop(CANDIDATE))
        .groupBy(key)
        .agg(
            F.count(F.when(valid, F.lit(1))).alias("_n"),
            F.min(F.when(valid, position())).alias(FIRST_SEEN),
        )
        .where(F.col("_n") > 1)
        .select(key, FIRST_SEEN)
    )


def mark_duplicates(annotated: DataFrame, repeated: DataFrame, key: str) -> DataFrame:
    """Reject as ``duplicate_key`` every otherwise valid row whose key was seen earlier.

    "Earlier" is (batch, source file, row order); ``repeated`` (from ``repeated_keys``) is broadcast
    and joined back on the key, so the wide rows are never shuffled.
    """
    here = position()
    joined = annotated.join(F.broadcast(repeated), key, "left")
    # After the first position: the first itself is kept unless a batch outside this input
    # saw the key earlier, whose position is then the first.
    is_duplicate = (
        F.col(REASON).isNull() & F.col(FIRST_SEEN).isNotNull() & (here > F.col(FIRST_SEEN))
    )
    return joined.select(
        *[c for c in annotated.columns if c != REASON],
        F.when(is_duplicate, F.lit(RejectReason.DUPLICATE_KEY.value))
        .otherwise(F.col(REASON))
        .alias(REASON),
    )


def with_rental_derivations(rentals: DataFrame) -> DataFrame:
    """Add duration in hours (not rounded), date and hour of the start (UTC)."""
    start, end = F.col("rental_start_time"), F.col("rental_end_time")
    return rentals.withColumns(
        {
            "rental_duration_hours": (F.unix_micros(end) - F.unix_micros(start)) / 3_600_000_000,
            "rental_date": F.to_date(start),
            "rental_hour": F.hour(start),
        }
    )
