"""Daily exports end to end (DESIGN 3.5), on tiny hand-made files through the real graph.

Three daily exports (a late arrival, a rental_id repeated on a later day) must give the KPI
tables one concatenated file gives; landing the days out of order, and re-landing a
corrected day, must end where landing everything at once does; raw history keeps every
landed day; a date-filtered query of processed rentals reads only that date's folder.
"""

from __future__ import annotations

import json
import shutil
from datetime import date
from decimal import Decimal
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
import pytest

from car_rental_platform.definitions import ASSETS
from car_rental_platform.partitions import RANGE_END, RANGE_START, RENTAL_BATCHES
from car_rental_platform.resources.local import local_resources
from spark_jobs.contract import (
    KPI_TABLES,
    LOCATIONS,
    RENTALS,
    USERS,
    VEHICLES,
    batch_of_key,
    daily_export_name,
)
from spark_jobs.rental_batches import appended_last
from tests.graph_fixtures import settings_for

pytestmark = pytest.mark.filterwarnings("ignore::dagster.BetaWarning")

SNAPSHOTS = {
    VEHICLES.file_name: [
        "1,L1,Reg,FHV,27-09-2026,P1,2018-01-09,2018,555,1 Base Rd,V1,15-03-2024 10:00:00,BMW,basic",
        "1,L2,Reg,FHV,27-09-2026,P2,2018-01-09,2019,555,2 Rd,V2,15-03-2024 10:00:00,Kia,premium",
    ],
    USERS.file_name: [
        "U1,Ann,Lee,ann@x.com,p,A1,2027-01-31,2020-01-01,1",
        "U2,Bob,Ray,bob@x.com,p,A2,2027-01-31,2020-01-01,1",
    ],
    LOCATIONS.file_name: [
        "1,Airport,1 Main St,Austin,TX,73301,30.2,-97.7",
        "2,Downtown,2 Main St,Austin,TX,73301,30.3,-97.7",
    ],
}
R1 = "R1,U1,V1,2024-03-01 10:00:00,2024-03-01 12:00:00,1,1,25.00"
R2 = "R2,U2,V2,2024-03-01 09:00:00,2024-03-01 10:00:00,2,1,25.00"
R1_AGAIN = "R1,U1,V1,2024-03-01 10:00:00,2024-03-01 12:00:00,1,1,99.99"
R3 = "R3,U1,V2,2024-03-02 08:00:00,2024-03-02 11:00:00,1,2,75.00"
R4_LATE = "R4,U2,V1,2024-03-01 20:00:00,2024-03-01 21:00:00,2,2,12.50"
R5 = "R5,U2,V1,2024-03-03 07:00:00,2024-03-03 10:00:00,1,1,37.50"
MORE_ON_DAY_3 = [
    f"R{n},U1,V1,2024-03-03 12:00:00,2024-03-03 13:00:00,2,1,12.50" for n in range(6, 10)
]
"""Enough rows that the one reject stays within the reject-rate limit (1 of 10)."""
R5_CORRECTED = "R5,U2,V1,2024-03-03 07:00:00,2024-03-03 10:00:00,1,1,40.00"
DAYS = {
    "2024-03-01": [R1, R2],
    "2024-03-02": [R3, R1_AGAIN, R4_LATE],
    "2024-03-03": [R5, *MORE_ON_DAY_3],
}
"""Kept: R1 (25.00, day 1), R2, R3, R4 (started on day 1, exported on day 2), R5-R9; R1 again
on day 2 is a duplicate_key reject. Revenue 225.00 over 9 rentals."""


def write(path: Path, header: tuple[str, ...], lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in [",".join(header), *lines]))


def write_snapshots(landing: Path) -> None:
    for table in (VEHICLES, USERS, LOCATIONS):
        write(landing / table.file_name, table.column_names, SNAPSHOTS[table.file_name])


def write_day(landing: Path, day: str, lines: list[str]) -> None:
    write(landing / f"{RENTALS.raw_name}_{day}.csv", RENTALS.column_names, lines)


def processed_config(max_reject_rate: float | None) -> dict:
    if max_reject_rate is None:
        return {}
    return {"ops": {"processed_tables": {"config": {"max_reject_rate": max_reject_rate}}}}


class Lake:
    """A landing folder, a lake and a Dagster instance, materialized as often as a test needs."""

    def __init__(self, root: Path, instance: dg.DagsterInstance) -> None:
        self.settings = settings_for(root)
        self.landing = Path(self.settings.source_dir)
        self.root = Path(self.settings.lake_root)
        self.instance = instance
        write_snapshots(self.landing)

    def materialize(self, *keys: str, max_reject_rate: float | None = None) -> None:
        """One run over the rentals partitions ``keys`` (a range, as a single-run backfill
        launches it) and every unpartitioned asset; the keys are registered first."""
        known = self.instance.get_dynamic_partitions(RENTAL_BATCHES.name)
        new = [key for key in sorted(keys) if key not in known]
        self.instance.add_dynamic_partitions(RENTAL_BATCHES.name, new)
        order = self.instance.get_dynamic_partitions(RENTAL_BATCHES.name)
        span = sorted(order.index(key) for key in keys)
        assert span == list(range(span[0], span[-1] + 1)), f"{keys} not a range of {order}"
        result = dg.materialize(
            ASSETS,
            resources=local_resources(self.settings),
            instance=self.instance,
            selection=dg.AssetSelection.groups("raw", "processed", "kpi", "catalog"),
            tags={RANGE_START: order[span[0]], RANGE_END: order[span[-1]]},
            run_config=processed_config(max_reject_rate),
            raise_on_error=False,
        )
        failures = [e.message for e in result.all_events if e.is_step_failure]
        assert result.success, failures
        processed = dg.AssetKey(["processed", RENTALS.name])
        assert set(keys) <= self.instance.get_materialized_partitions(processed)

    def kpi(self, name: str) -> pd.DataFrame:
        table = next(t for t in KPI_TABLES if t.name == name)
        frame = pd.read_parquet(self.root / "kpi" / name)
        return frame.sort_values(list(table.key)).reset_index(drop=True)

    def also_rewritten(self, day: str) -> list[str]:
        """The batches the latest run of partition ``day`` rewrote beside it."""
        key = dg.AssetKey(["processed", RENTALS.name])
        filter_ = dg.AssetRecordsFilter(asset_key=key, asset_partitions=[day])
        (record,) = self.instance.fetch_materializations(filter_, limit=1).records
        return record.asset_materialization.metadata["batches_also_rewritten"].value

    def aggregated(self) -> list[str]:
        """How each run so far aggregated the KPI tables (daily_metrics' metadata)."""
        key = dg.AssetKey(["kpi", "daily_metrics"])
        records = self.instance.fetch_materializations(key, limit=100, ascending=True).records
        return [r.asset_materialization.metadata["aggregated"].value for r in records]

    def processed_files(self, day: str) -> dict[str, float]:
        """The Parquet files of one ``rental_date`` folder and their modification times."""
        folder = self.root / "processed" / RENTALS.name / f"rental_date={day}"
        return {p.name: p.stat().st_mtime_ns for p in folder.glob("*.parquet")}

    def rejected(self) -> list[tuple[str, str, str]]:
        frame = pd.read_parquet(self.root / "processed" / "rejected_rows")
        return sorted((Path(r.source_file).name, r.reason, r.record) for r in frame.itertuples())

    def revenue(self) -> Decimal:
        return Decimal(str(self.kpi("daily_metrics")["total_revenue"].sum()))


@pytest.fixture(scope="module")
def instance():
    with dg.instance_for_test() as instance:
        yield instance


@pytest.fixture(scope="module")
def daily(tmp_path_factory: pytest.TempPathFactory, instance: dg.DagsterInstance) -> Lake:
    """The three days landed together and materialized in one run (a three-day backfill)."""
    lake = Lake(tmp_path_factory.mktemp("daily"), instance)
    for day, lines in DAYS.items():
        write_day(lake.landing, day, lines)
    lake.materialize(*DAYS)
    return lake


def test_daily_exports_give_the_kpis_of_one_concatenated_file(daily: Lake, tmp_path: Path) -> None:
    single = Lake(tmp_path / "single", daily.instance)
    concatenated = [line for lines in DAYS.values() for line in lines]
    write(single.landing / RENTALS.file_name, RENTALS.column_names, concatenated)
    single.materialize("full")
    for table in KPI_TABLES:
        pd.testing.assert_frame_equal(daily.kpi(table.name), single.kpi(table.name))
    days = daily.kpi("daily_metrics")[["rental_date", "total_transactions", "total_revenue"]]
    assert [(str(d), n, str(r)) for d, n, r in days.itertuples(index=False)] == [
        ("2024-03-01", 3, "62.50"),  # R1, R2 and R4, the late arrival exported on day 2
        ("2024-03-02", 1, "75.00"),
        ("2024-03-03", 5, "87.50"),
    ]
    # R1 repeated on day 2 is rejected there, and its first export's amount is kept.
    assert daily.rejected() == [
        (daily_export_name(date(2024, 3, 2)), "duplicate_key", rejected_record(R1_AGAIN))
    ]
    assert single.rejected() == [(RENTALS.file_name, "duplicate_key", rejected_record(R1_AGAIN))]


def rejected_record(line: str) -> str:
    return json.dumps(
        dict(zip(RENTALS.column_names, line.split(","), strict=True)), separators=(",", ":")
    )


def test_days_out_of_order_a_corrected_day_and_raw_history(daily: Lake, tmp_path: Path) -> None:
    """Each run processes only the days it names (the partitions), in any order."""
    with dg.instance_for_test() as instance:
        lake = Lake(tmp_path / "out_of_order", instance)
        write_day(lake.landing, "2024-03-02", DAYS["2024-03-02"])
        lake.materialize("2024-03-02")
        # Alone, day 2 keeps its R1 (the only one seen so far).
        assert lake.revenue() == Decimal("99.99") + Decimal("75.00") + Decimal("12.50")
        assert lake.rejected() == []

        write_day(lake.landing, "2024-03-03", DAYS["2024-03-03"])
        write_day(lake.landing, "2024-03-01", DAYS["2024-03-01"])
        lake.materialize("2024-03-01", "2024-03-03")
        # Day 1 processed later but is earlier: its R1 is kept and day 2's becomes the
        # duplicate, so day 2 (not in the run) was rewritten too.
        for table in KPI_TABLES:
            pd.testing.assert_frame_equal(lake.kpi(table.name), daily.kpi(table.name))
        assert lake.rejected() == daily.rejected()

        # Day 3 re-landed corrected; day 1 gone from the landing folder (archived upstream).
        raw = lake.root / "raw" / RENTALS.raw_name
        earlier = {str(p): p.read_bytes() for p in raw.glob("batch=2024-03-0[12]/*")}
        day_1 = lake.processed_files("2024-03-01")
        write_day(lake.landing, "2024-03-03", [R5_CORRECTED, *MORE_ON_DAY_3])
        (lake.landing / daily_export_name(date(2024, 3, 1))).unlink()
        lake.materialize("2024-03-03")
        assert lake.revenue() == Decimal("227.50")  # 225.00 with R5 at 40.00, not 37.50
        assert lake.aggregated()[-1] == (
            "every rental: rentals batch(es) ['2024-03-03'] rewritten or removed since the last run"
        )
        assert sorted(p.name for p in raw.iterdir()) == [f"batch={day}" for day in DAYS]
        assert {str(p): p.read_bytes() for p in raw.glob("batch=2024-03-0[12]/*")} == earlier
        assert "40.00" in (raw / "batch=2024-03-03" / RENTALS.file_name).read_text()
        assert lake.rejected() == daily.rejected()
        assert lake.processed_files("2024-03-01") == day_1  # only day 3's folder rewritten
        assert lake.also_rewritten("2024-03-03") == []

        # A run that died mid-publish (its marker left), then an index lost: the next run
        # of day 3 trusts neither and rewrites every landed batch.
        # The KPI job's marker too: its partials are not merged into.
        index = lake.root / "_state" / "rental_keys"
        (index / "_publishing").write_text("2024-03-03")
        (lake.root / "_state" / "kpi_groups" / "_publishing").write_text("")
        lake.materialize("2024-03-03")
        assert not (index / "_publishing").exists()
        assert lake.aggregated()[-1].startswith("every rental: an earlier run stopped")
        assert lake.also_rewritten("2024-03-03") == ["2024-03-01", "2024-03-02"]
        shutil.rmtree(index)
        lake.materialize("2024-03-03")
        assert lake.also_rewritten("2024-03-03") == ["2024-03-01", "2024-03-02"]
        assert sorted(p.name for p in index.glob("batch=*")) == [f"batch={day}" for day in DAYS]
        assert lake.revenue() == Decimal("227.50")
        assert lake.rejected() == daily.rejected()


def test_days_added_later_merge_into_the_kept_kpi_partials(daily: Lake, tmp_path: Path) -> None:
    """Days added after the last run (a late arrival, a repeated rental_id among them) are
    aggregated alone and merged into the partials it kept: the tables equal the all-at-once
    run's. (A rewritten day and a stopped publish go back to every rental: see the next test.)"""
    with dg.instance_for_test() as instance:
        lake = Lake(tmp_path / "added_later", instance)
        write_day(lake.landing, "2024-03-01", DAYS["2024-03-01"])
        lake.materialize("2024-03-01")
        for day in ("2024-03-02", "2024-03-03"):
            write_day(lake.landing, day, DAYS[day])
        lake.materialize("2024-03-02", "2024-03-03", max_reject_rate=0.5)  # 1 reject in 8
        assert lake.also_rewritten("2024-03-02") == []
        assert lake.aggregated() == [
            "every rental: no partials kept from an earlier run",
            "merged into the kept partials: rentals batch(es) ['2024-03-02', '2024-03-03'] "
            "added since the last run",
        ]
        for table in KPI_TABLES:
            pd.testing.assert_frame_equal(lake.kpi(table.name), daily.kpi(table.name))


def test_only_batches_after_every_published_one_skip_the_search_for_changed_copies() -> None:
    """A key's first position is in the earliest batch holding it: batches added after all
    the published ones (or replacing the newest) cannot move another batch's kept copy."""
    day = batch_of_key
    published = [day("full"), day("2024-03-01"), day("2024-03-02")]
    assert appended_last([day("2024-03-03")], published)
    assert appended_last([day("2024-03-02"), day("2024-03-03")], published)  # newest again
    assert appended_last([day("full")], [])
    assert not appended_last([day("2024-03-01")], published)
    assert not appended_last([day("full")], [day("2024-03-01")])


def test_a_date_filtered_query_reads_only_that_dates_folder(daily: Lake) -> None:
    table = daily.root / "processed" / "rentals"
    folders = sorted(p.name for p in table.glob("rental_date=*"))
    assert folders == [f"rental_date={day}" for day in DAYS]
    files = len(list(table.rglob("*.parquet")))
    wanted = sorted(p.name for p in table.glob("rental_date=2024-03-02/*.parquet"))
    with duckdb.connect(daily.settings.catalog_path, read_only=True) as connection:
        sql = (
            "SELECT count(*), sum(total_amount) FROM car_rental_db.rentals "
            "WHERE rental_date = DATE '2024-03-02'"
        )
        assert connection.sql(sql).fetchall() == [(1, Decimal("75.00"))]
        plan = connection.sql(f"EXPLAIN ANALYZE {sql}").fetchall()[0][1]
    assert f"Scanning Files: {len(wanted)}/{files}" in plan, plan
    assert files > len(wanted)
    assert "rental_date=2024-03-02" in plan and "rental_date=2024-03-01" not in plan, plan
