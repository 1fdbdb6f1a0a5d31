"""The column lineage of the KPI tables: each column -> the processed columns it is computed from.

Read from the KPI formulas themselves (``spark_jobs.kpis.column_lineage``), not written per table.
"""

import dagster as dg

from car_rental_platform.assets.processed import processed_key
from spark_jobs.contract import KpiTable
from spark_jobs.kpis import column_lineage


def kpi_column_lineage(table: KpiTable) -> dg.TableColumnLineage:
    return dg.TableColumnLineage(
        deps_by_column={
            column: [
                dg.TableColumnDep(asset_key=processed_key(source), column_name=source_column)
                for source, source_column in sources
            ]
            for column, sources in column_lineage(table).items()
        }
    )
