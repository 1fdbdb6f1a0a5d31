"""The sample-data generator: deterministic bytes, the contract's headers, and planted bad rows
that an independent re-implementation of the cleaning rules rejects exactly as ``planted`` says.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from car_rental_platform.sample_data.__main__ import main
from car_rental_platform.sample_data.generator import SampleSummary, generate
from spark_jobs.contract import (
    LOCATIONS,
    RENTALS,
    SOURCE_TABLES,
    USERS,
    VEHICLES,
    Column,
    RejectReason,
    SourceTable,
    batch_order,
    rental_batch,
)

R = RejectReason
N_RENTALS = 2000
COMMON = {R.MALFORMED_LINE, R.MISSING_REQUIRED_VALUE, R.UNPARSEABLE_VALUE, R.DUPLICATE_KEY}
APPLICABLE = {
    "vehicles": COMMON,
    "users": COMMON,
    "locations": COMMON | {R.COORDINATES_OUT_OF_RANGE},
    "rentals": COMMON | {R.END_NOT_AFTER_START, R.NEGATIVE_AMOUNT},
}
INT = re.compile(r"[+-]?\d+")
DOUBLE = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
DECIMAL = re.compile(r"[+-]?\d+(\.\d{1,2})?")
JAVA_TO_STRFTIME = {"yyyy": "%Y", "MM": "%m", "dd": "%d", "HH": "%H", "mm": "%M", "ss": "%S"}


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SampleSummary]:
    out = tmp_path_factory.mktemp("sample")
    return out, generate(out, rentals=N_RENTALS, seed=7)


def read(path: Path) -> list[list[str]]:
    """Header and data lines as strings, exactly as a CSV reader sees them."""
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def parses(column: Column, value: str) -> bool:
    """Whether a trimmed, non-empty value parses to the column's contract type."""
    if column.name in ("active", "is_active"):
        return value in ("0", "1")
    if column.type in ("int", "bigint"):
        return bool(INT.fullmatch(value)) and abs(int(value)) < 2**31
    if column.type == "double":
        return bool(DOUBLE.fullmatch(value))
    if column.type.startswith("decimal"):
        return bool(DECIMAL.fullmatch(value))
    if column.type in ("date", "timestamp"):
        fmt = re.sub("|".join(JAVA_TO_STRFTIME), lambda m: JAVA_TO_STRFTIME[m[0]], column.format)
        try:
            return datetime.strptime(value, fmt).strftime(fmt) == value
        except ValueError:
            return False
    return True


def problems(table: SourceTable, fields: list[str]) -> list[RejectReason]:
    """Every problem of one line (not just the first), in the job's order of precedence."""
    if len(fields) != len(table.columns):
        return [R.MALFORMED_LINE]
    row = {c.name: f.strip() for c, f in zip(table.columns, fields, strict=True)}
    found = [R.MISSING_REQUIRED_VALUE for c in table.columns if c.required and not row[c.name]]
    found += [
        R.UNPARSEABLE_VALUE for c in table.columns if row[c.name] and not parses(c, row[c.name])
    ]
    if found:
        return found
    if table.name == "rentals":
        start, end = (
            datetime.fromisoformat(row[c]) for c in ("rental_start_time", "rental_end_time")
        )
        found += [R.END_NOT_AFTER_START] * (end <= start)
        found += [R.NEGATIVE_AMOUNT] * (float(row["total_amount"]) < 0)
    if table.name == "locations" and (
        abs(float(row["latitude"] or 0)) > 90 or abs(float(row["longitude"] or 0)) > 180
    ):
        found.append(R.COORDINATES_OUT_OF_RANGE)
    return found


def rejections(table: SourceTable, lines: list[list[str]]) -> Counter[tuple[str, str]]:
    """Rejected lines by (table, reason); asserts that no line has more than one problem."""
    rejected: Counter[tuple[str, str]] = Counter()
    seen: set[str] = set()
    key = table.column_names.index(table.key)
    for fields in lines:
        found = problems(table, fields)
        assert len(found) <= 1, (table.name, fields, found)
        if len(fields) > len(table.columns):  # a surplus field must be the line's only problem
            assert not problems(table, fields[: len(table.columns)]), fields
        if not found:
            value = fields[key].strip()
            value = str(int(value)) if table.key == "location_id" else value
            found = [R.DUPLICATE_KEY] if value in seen else []
            seen.add(value)
        rejected.update((table.name, r.value) for r in found)
    return rejected


def test_same_seed_gives_same_bytes_and_another_seed_different_bytes(tmp_path: Path) -> None:
    runs = {
        name: generate(tmp_path / name, rentals=500, seed=seed)
        for name, seed in (("a", 1), ("b", 1), ("c", 2))
    }
    assert runs["a"] == runs["b"]
    for table in SOURCE_TABLES:
        first, again, other = ((tmp_path / n / table.file_name).read_bytes() for n in "abc")
        assert first == again
        assert first != other


def test_headers_follow_the_contract_and_rows_counts_every_data_line(sample) -> None:
    out, summary = sample
    assert summary.rows["rental_transactions.csv"] == N_RENTALS
    assert list(summary.rows) == [t.file_name for t in SOURCE_TABLES]
    for table in SOURCE_TABLES:
        text = (out / table.file_name).read_text(encoding="utf-8")
        assert text.endswith("\n") and "\r" not in text
        assert text.splitlines()[0] == ",".join(table.column_names)
        lines = read(out / table.file_name)
        assert len(lines) - 1 == summary.rows[table.file_name] == text.count("\n") - 1


def test_every_applicable_reason_is_planted(sample) -> None:
    _, summary = sample
    planted: dict[str, set[RejectReason]] = {}
    for (table, reason), count in summary.planted.items():
        assert 2 <= count <= 7
        planted.setdefault(table, set()).add(R(reason))
    assert planted == APPLICABLE


def test_independent_rules_reject_exactly_the_planted_rows(sample) -> None:
    out, summary = sample
    rejected: Counter[tuple[str, str]] = Counter()
    for table in SOURCE_TABLES:
        rejected += rejections(table, read(out / table.file_name)[1:])
    assert dict(rejected) == summary.planted


def test_bad_rows_are_scattered_not_appended(sample) -> None:
    out, _ = sample
    lines = read(out / "rental_transactions.csv")[1:]
    bad = [i for i, fields in enumerate(lines) if problems(RENTALS, fields)]
    assert bad[0] < len(lines) // 4 and bad[-1] > 3 * len(lines) // 4


def test_without_bad_rows_nothing_is_planted_or_rejected(tmp_path: Path) -> None:
    summary = generate(tmp_path, rentals=500, bad_rows=False)
    assert summary.planted == {}
    for table in SOURCE_TABLES:
        assert not rejections(table, read(tmp_path / table.file_name)[1:])


def test_ids_that_look_like_numbers_are_written_as_plain_text(sample) -> None:
    out, _ = sample
    for name in ("vehicles.csv", "users.csv", "rental_transactions.csv"):
        text = (out / name).read_text(encoding="utf-8")
        assert re.search(r"(^|,)0{3}\d{7}(,|$)", text, re.MULTILINE), name
        assert re.search(r"(^|,)[1-9]e\d{8}(,|$)", text, re.MULTILINE), name
    ids = [row[0] for row in read(out / "users.csv")[1:]]
    assert all(re.fullmatch(r"\s*([0-9a-f]{10})?\s*", i) for i in ids)


def test_rentals_are_realistic_and_reference_some_unknown_entities(sample) -> None:
    out, _ = sample
    users = {row[0].strip() for row in read(out / USERS.file_name)[1:]}
    vehicle_type = {r[10]: r[13] for r in read(out / VEHICLES.file_name)[1:] if len(r) == 14}
    rate = {"basic": 12.5, "premium": 25.0, "high_end": 60.0}
    valid = [r for r in read(out / RENTALS.file_name)[1:] if not problems(RENTALS, r)]
    starts = [datetime.fromisoformat(r[3]) for r in valid]
    mispriced = 0
    for row, start in zip(valid, starts, strict=True):
        hours = (datetime.fromisoformat(row[4]) - start).total_seconds() / 3600
        assert hours == int(hours) and 1 <= hours <= 72
        if row[2] in vehicle_type:
            mispriced += float(row[7]) != hours * rate[vehicle_type[row[2]]]
    assert mispriced <= 4  # two free rentals, and a duplicate planted with another amount
    assert {s.hour for s in starts} == set(range(24))
    assert {s.weekday() for s in starts} == set(range(7))
    assert sum(r[1] not in users for r in valid) >= 3
    assert sum(r[2] not in vehicle_type for r in valid) >= 3
    assert any(r[5] == "99999" for r in valid)
    assert any(r[7] == "0.00" for r in valid)


def test_cli_prints_rows_per_file_planted_rows_and_time(tmp_path: Path, capsys) -> None:
    main(["--out", str(tmp_path), "--rentals", "300", "--seed", "3"])
    printed = capsys.readouterr().out
    for table in SOURCE_TABLES:
        assert str(tmp_path / table.file_name) in printed
    assert "rentals/negative_amount=6" in printed and "elapsed" in printed


@pytest.fixture(scope="module")
def daily_sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SampleSummary]:
    out = tmp_path_factory.mktemp("daily")
    return out, generate(out, rentals=N_RENTALS, seed=7, daily=True)


def daily_lines(out: Path) -> list[tuple[date, list[str]]]:
    """(export day, fields) of every daily export's data lines, by day then file order."""
    batches = [b for p in out.iterdir() if (b := rental_batch(p.name)) is not None]
    assert all(batch.day is not None for batch in batches)
    return [
        (batch.day, fields)
        for batch in batch_order(batches)
        for fields in read(out / batch.file_name)[1:]
    ]


def kept(lines: list[list[str]]) -> list[list[str]]:
    """The rental lines the cleaning rules keep: no problem, first occurrence of the id."""
    seen: set[str] = set()
    out = []
    for fields in lines:
        if problems(RENTALS, fields):
            continue
        if fields[0].strip() not in seen:
            out.append(fields)
        seen.add(fields[0].strip())
    return out


def test_daily_exports_hold_the_single_files_lines_and_the_same_snapshots(
    sample, daily_sample
) -> None:
    (single, summary), (daily, daily_summary) = sample, daily_sample
    assert not (daily / RENTALS.file_name).exists()
    for table in (VEHICLES, USERS, LOCATIONS):
        assert (daily / table.file_name).read_bytes() == (single / table.file_name).read_bytes()
    names = sorted(p.name for p in daily.glob("rental_transactions_*.csv"))
    assert names == sorted(n for n in daily_summary.rows if n.startswith("rental_transactions_"))
    days = [rental_batch(n).day for n in names]
    assert days == [days[0] + timedelta(days=i) for i in range(len(days))]  # one per day
    for name in names:
        assert (daily / name).read_text(encoding="utf-8").startswith(",".join(RENTALS.column_names))
    lines = [fields for _, fields in daily_lines(daily)]
    full = read(single / RENTALS.file_name)[1:]
    assert sorted(lines) == sorted(full)
    assert sum(daily_summary.rows[n] for n in names) == N_RENTALS
    assert daily_summary.planted == summary.planted


def test_daily_exports_reject_and_keep_what_the_single_file_does(sample, daily_sample) -> None:
    (single, summary), (daily, _) = sample, daily_sample
    lines = [fields for _, fields in daily_lines(daily)]
    rejected = rejections(RENTALS, lines)
    assert dict(rejected) == {k: v for k, v in summary.planted.items() if k[0] == "rentals"}
    assert sorted(kept(lines)) == sorted(kept(read(single / RENTALS.file_name)[1:]))


def test_daily_exports_have_late_arrivals_and_ids_repeated_across_days(daily_sample) -> None:
    out, _ = daily_sample
    late = 0
    days_of: dict[str, set[date]] = {}
    for day, fields in daily_lines(out):
        if not problems(RENTALS, fields):
            late += datetime.fromisoformat(fields[3]).date() < day
        days_of.setdefault(fields[0].strip(), set()).add(day)
    assert 0.01 * N_RENTALS <= late <= 0.06 * N_RENTALS
    assert sum(len(d) > 1 for d in days_of.values()) >= 5


def test_daily_exports_are_deterministic(tmp_path: Path) -> None:
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        generate(tmp_path / name, rentals=500, seed=seed, daily=True)
    a, b, c = (sorted((tmp_path / n).iterdir()) for n in "abc")
    assert [p.name for p in a] == [p.name for p in b]
    assert all(x.read_bytes() == y.read_bytes() for x, y in zip(a, b, strict=True))
    assert [p.read_bytes() for p in a] != [p.read_bytes() for p in c]


def test_cli_daily_prints_the_exports_in_one_line(tmp_path: Path, capsys) -> None:
    main(["--out", str(tmp_path), "--rentals", "300", "--seed", "3", "--daily"])
    printed = capsys.readouterr().out
    assert "daily rental exports" in printed and "rental_transactions_2024-01-01.csv" in printed
    assert len(printed.splitlines()) == 6
