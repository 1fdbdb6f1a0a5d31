"""The KPI assets' column lineage, as the loaded definitions carry it: each KPI column names the
processed columns its formula reads (checked by hand for a few), every column has an entry, and
every entry names a column of a processed table the asset depends on.

That the formulas read only the columns they declare is checked with Spark, in test_kpis.py.
"""

from __future__ import annotations

from dataclasses import replace

import dagster as dg
import pytest

from car_rental_platform import definitions
from spark_jobs.contract import KPI_BY_NAME, KPI_TABLES, SOURCES_BY_NAME, Column
from spark_jobs.kpis import column_lineage

HAND_CHECKED = {
    ("location_metrics", "total_revenue"): {"rentals.total_amount"},
    ("location_metrics", "location_id"): {
        "locations.location_id",
        "rentals.pickup_location",
        "rentals.dropoff_location",
    },
    ("location_metrics", "city"): {"locations.city"},
    ("location_metrics", "total_dropoffs"): {"rentals.rental_id"},
    ("vehicle_type_metrics", "vehicle_type"): {"vehicles.vehicle_type"},
    ("vehicle_type_metrics", "avg_rental_duration_hours"): {"rentals.rental_duration_hours"},
    ("brand_metrics", "unique_vehicles"): {"rentals.vehicle_id"},
    ("daily_metrics", "unique_users"): {"rentals.user_id"},
    ("user_metrics", "user_id"): {"rentals.user_id"},
    ("user_metrics", "first_name"): {"users.first_name"},
    # percentile of total_spent, category of the percentile: both come from the amounts
    ("user_metrics", "spending_category"): {"rentals.total_amount"},
    ("hourly_metrics", "hour_of_day"): {"rentals.rental_hour"},
    ("day_of_week_metrics", "day_of_week"): {"rentals.rental_date"},
}
"""(KPI table, column) -> its processed columns, worked out from spark_jobs/kpis.py by hand."""


@pytest.fixture(scope="module")
def asset_graph():
    return definitions.defs.get_repository_def().asset_graph


def lineage(asset_graph, table: str) -> dg.TableColumnLineage:
    """The spec's lineage, whether Dagster holds it as given or as a metadata value."""
    value = asset_graph.get(dg.AssetKey(["kpi", table])).metadata["dagster/column_lineage"]
    value = getattr(value, "column_lineage", value)
    assert isinstance(value, dg.TableColumnLineage), table
    return value


def named(deps: list[dg.TableColumnDep]) -> set[str]:
    """``processed/rentals`` + ``total_amount`` -> ``rentals.total_amount``."""
    assert all(dep.asset_key.path[0] == "processed" for dep in deps), deps
    return {f"{dep.asset_key.path[-1]}.{dep.column_name}" for dep in deps}


@pytest.mark.parametrize(("table", "column"), sorted(HAND_CHECKED), ids="{0[0]}.{0[1]}".format)
def test_a_kpi_column_names_the_processed_columns_it_is_computed_from(
    asset_graph, table: str, column: str
) -> None:
    deps = lineage(asset_graph, table).deps_by_column[column]
    assert named(list(deps)) == HAND_CHECKED[table, column]


@pytest.mark.parametrize("table", [t.name for t in KPI_TABLES])
def test_every_kpi_column_has_lineage_and_no_other_name_does(asset_graph, table: str) -> None:
    deps_by_column = lineage(asset_graph, table).deps_by_column
    assert list(deps_by_column) == list(KPI_BY_NAME[table].column_names)
    assert [column for column, deps in deps_by_column.items() if not deps] == []


@pytest.mark.parametrize("table", [t.name for t in KPI_TABLES])
def test_lineage_names_columns_of_the_processed_tables_the_asset_depends_on(
    asset_graph, table: str
) -> None:
    node = asset_graph.get(dg.AssetKey(["kpi", table]))
    deps = [dep for deps in lineage(asset_graph, table).deps_by_column.values() for dep in deps]
    assert {dep.asset_key for dep in deps} == set(node.parent_keys)
    unknown = [
        f"{dep.asset_key.to_user_string()}.{dep.column_name}"
        for dep in deps
        if dep.column_name
        not in {c.name for c in SOURCES_BY_NAME[dep.asset_key.path[-1]].processed_columns}
    ]
    assert unknown == []


def test_a_kpi_column_no_formula_computes_fails_naming_it() -> None:
    """So a column added to the contract but not to kpis.py stops the definitions loading."""
    widened = replace(
        KPI_BY_NAME["hourly_metrics"],
        columns=(*KPI_BY_NAME["hourly_metrics"].columns, Column("median_amount", "double")),
    )
    with pytest.raises(KeyError, match=r"hourly_metrics\.median_amount"):
        column_lineage(widened)
