"""Landing messy exports: encodings, quoting, junk lines, empty files, all-or-nothing (no Spark).

Each case writes the exact bytes a spreadsheet or a script would, lands them with the real
code, and checks the canonical copy line by line: what the transform will read.
"""

from __future__ import annotations

import csv
import hashlib
import re
from pathlib import Path

import dagster as dg
import pytest

from car_rental_platform.assets.raw import raw_files
from car_rental_platform.raw_records import RawEncodingError, land
from car_rental_platform.resources.lake import LocalLake
from car_rental_platform.resources.landing import LocalLanding
from spark_jobs.contract import LOCATIONS, RENTALS, SOURCE_TABLES, USERS, RawSchemaError
from spark_jobs.raw_format import MANIFEST, Manifest

USER_HEADER = ",".join(USERS.column_names)
USER = "U1,Ann,Lee,ann@x.com,p,A1,2027-01-31,2020-01-01,1"
LOCATION_HEADER = ",".join(LOCATIONS.column_names)


def landed(tmp_path: Path, table, data: bytes, encoding: str = "utf-8"):
    """Land the bytes as ``table``'s export: (canonical rows as lists, manifest)."""
    export = tmp_path / f"export-{table.file_name}"
    export.write_bytes(data)
    result = land(export, table, str(export), tmp_path / table.file_name, encoding)
    with result.canonical.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    return rows, result.manifest


def test_a_latin1_byte_is_named_by_file_line_column_and_offset(tmp_path: Path) -> None:
    line2 = "U2,Zoë,Lee,z@x.com,p,A2,2027-01-31,2020-01-01,1"
    data = f"{USER_HEADER}\n{USER}\n{line2}\n".encode("latin-1")
    offset = len(f"{USER_HEADER}\n{USER}\n".encode()) + len("U2,Zo")
    with pytest.raises(RawEncodingError) as error:
        landed(tmp_path, USERS, data)
    message = str(error.value)
    assert "export-users.csv is not valid utf-8 text: byte(s) 0xeb" in message
    assert f"at line 3, column 6 (byte offset {offset})" in message
    assert "CAR_RENTAL_SOURCE_ENCODING=users.csv=cp1252" in message


def test_an_error_past_the_first_megabyte_is_located_exactly(tmp_path: Path) -> None:
    filler = [USER.replace("U1", f"U{i}") for i in range(30_000)]  # ~1.5 MB of ASCII
    head = "\n".join([USER_HEADER, *filler]) + "\n"
    data = head.encode() + "U0,Zoë,Lee,z@x.com,p,A,2027-01-31,2020-01-01,1\n".encode("cp1252")
    with pytest.raises(RawEncodingError) as error:
        landed(tmp_path, USERS, data)
    assert len(head) > 1 << 20
    assert f"at line {30_002}, column 6 (byte offset {len(head) + 5})" in str(error.value)


def test_the_configured_encoding_reads_the_file(tmp_path: Path) -> None:
    line2 = "U2,Zoë,Lee,z@x.com,p,A2,2027-01-31,2020-01-01,1"
    data = f"{USER_HEADER}\r\n{line2}\r\n".encode("cp1252")
    rows, manifest = landed(tmp_path, USERS, data, encoding="cp1252")
    assert rows[1] == ["2", *line2.split(","), "", ""]
    assert (manifest.encoding, manifest.records, manifest.malformed) == ("cp1252", 1, 0)


@pytest.mark.parametrize("codec", ["utf-16", "utf-8-sig", "utf-32"])
def test_a_byte_order_mark_decides_the_encoding(tmp_path: Path, codec: str) -> None:
    text = f"{USER_HEADER}\r\n{USER.replace('Ann', 'Zoë')}\r\n"
    rows, manifest = landed(tmp_path, USERS, text.encode(codec), encoding="cp1252")
    assert rows[1][2] == "Zoë"
    assert manifest.encoding == codec.removesuffix("-sig")
    assert manifest.records == 1


def test_utf16_without_a_byte_order_mark_says_which_setting_reads_it(tmp_path: Path) -> None:
    data = f"{USER_HEADER}\n{USER}\n".encode("utf-16-le")
    with pytest.raises(RawEncodingError, match="holds NUL bytes") as error:
        landed(tmp_path, USERS, data)
    assert "CAR_RENTAL_SOURCE_ENCODING=users.csv=utf-16-le" in str(error.value)


@pytest.mark.parametrize("separator,name", [("\t", "tabs"), (";", "semicolons")])
def test_a_header_with_another_separator_says_so(tmp_path: Path, separator, name) -> None:
    data = (separator.join(USERS.column_names) + "\n").encode()
    with pytest.raises(RawSchemaError, match=f"separated by {name}, not commas"):
        landed(tmp_path, USERS, data)


@pytest.mark.parametrize("data", [b"", b"\r\n\n", b"\x1a"], ids=["0-byte", "blank", "ctrl-z"])
def test_a_file_without_a_header_is_a_schema_error(tmp_path: Path, data: bytes) -> None:
    with pytest.raises(RawSchemaError, match="is empty: no header row"):
        landed(tmp_path, USERS, data)


def test_a_header_only_file_is_zero_records(tmp_path: Path) -> None:
    rows, manifest = landed(tmp_path, USERS, f"\ufeff{USER_HEADER}\r\n".encode())
    assert rows == [["_line", *USERS.column_names, "_malformed", "_problem"]]
    assert (manifest.records, manifest.malformed, manifest.encoding) == (0, 0, "utf-8")


def test_a_quoted_field_spanning_lines_is_one_record(tmp_path: Path) -> None:
    data = (
        f"{LOCATION_HEADER}\r\n"
        '1,Airport,"Terminal 1\r\nGate 5",Boston,MA,02128,42.36,-71.0\r\n'
        "2,Downtown,1 Main St,Boston,MA,02108,42.35,-71.06\r\n"
    ).encode()
    rows, manifest = landed(tmp_path, LOCATIONS, data)
    assert rows[1:] == [
        [
            "2",
            "1",
            "Airport",
            "Terminal 1\nGate 5",
            "Boston",
            "MA",
            "02128",
            "42.36",
            "-71.0",
            "",
            "",
        ],
        ["4", "2", "Downtown", "1 Main St", "Boston", "MA", "02108", "42.35", "-71.06", "", ""],
    ]
    assert (manifest.records, manifest.multiline_records, manifest.malformed) == (2, 1, 0)


def test_a_stray_quote_costs_its_own_line_only(tmp_path: Path) -> None:
    data = (
        f"{LOCATION_HEADER}\n"
        '1,"Airport,1 Rd,Boston,MA,02128,42.36,-71.0\n'  # the quote never closes
        "2,Downtown,1 Main St,Boston,MA,02108,42.35,-71.06\n"
        '3,"Say ""hi""",2 Elm St,Boston,MA,02108,42.35,-71.06\n'
    ).encode()
    rows, manifest = landed(tmp_path, LOCATIONS, data)
    assert [row[0] for row in rows[1:]] == ["2", "3", "4"]
    malformed = rows[1]
    assert malformed[1:9] == [""] * 8
    assert malformed[9] == '1,"Airport,1 Rd,Boston,MA,02128,42.36,-71.0'
    assert malformed[10].startswith("a quote opened on this line is never closed")
    assert rows[2][1:3] == ["2", "Downtown"]
    assert rows[3][1:3] == ["3", 'Say "hi"']
    assert (manifest.records, manifest.malformed, manifest.multiline_records) == (3, 1, 0)


def test_junk_lines_are_records_to_reject_and_empty_lines_are_none(tmp_path: Path) -> None:
    data = (
        f"{USER_HEADER}\r\n"
        f"{USER}\r\n"
        "\x00\r\n"  # line 3: a NUL
        "   \r\n"  # line 4: spaces
        "\r\n"  # line 5: empty, not a record
        "U2,Bo,Li,b@x.com,p,B1,2027-01-31,2020-01-01,0\r\n"
        "U3,Cy,Po,c@x.com,p,C1,2027-01-31,2020-01-01\r\n"  # line 7: 8 fields
        "\x1a"  # DOS end-of-file byte
    ).encode()
    rows, manifest = landed(tmp_path, USERS, data)
    assert [(row[0], row[-2], row[-1]) for row in rows[1:]] == [
        ("2", "", ""),
        ("3", "\x00", "the line holds only spaces or control characters"),
        ("4", "   ", "the line holds only spaces or control characters"),
        ("6", "", ""),
        ("7", "U3,Cy,Po,c@x.com,p,C1,2027-01-31,2020-01-01", "8 fields, expected 9"),
    ]
    assert manifest == Manifest(
        source=str(tmp_path / "export-users.csv"),
        file_name="users.csv",
        encoding="utf-8",
        records=5,
        malformed=3,
        empty_lines=1,
        multiline_records=0,
        eof_marker_removed=True,
        size_bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
    )


def test_columns_in_any_order_are_written_in_contract_order(tmp_path: Path) -> None:
    names = list(reversed(USERS.column_names))
    values = list(reversed(USER.split(",")))
    rows, _ = landed(tmp_path, USERS, (",".join(names) + "\n" + ",".join(values)).encode())
    assert rows[1] == ["2", *USER.split(","), "", ""]


def test_the_encoding_setting_names_files_or_all_of_them() -> None:
    landing = LocalLanding(source_dir=".", encoding="latin-1, users.csv=cp1252")
    assert landing.encoding_of("users.csv") == "cp1252"
    assert landing.encoding_of("vehicles.csv") == "latin-1"
    assert LocalLanding(source_dir=".").encoding_of("users.csv") == "utf-8"
    with pytest.raises(ValueError, match="'klingon' is not an encoding"):
        LocalLanding(source_dir=".", encoding="users.csv=klingon").encoding_of("users.csv")


# --- All-or-nothing, through Dagster ------------------------------------------------------


def write_exports(folder: Path, users_line: str = USER) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for table in SOURCE_TABLES:
        (folder / table.file_name).write_text(",".join(table.column_names) + "\n")
    (folder / USERS.file_name).write_text(f"{USER_HEADER}\n{users_line}\n")


def raw_zone(lake: Path) -> dict[str, str]:
    return {
        str(p.relative_to(lake)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted((lake / "raw").rglob("*"))
        if p.is_file()
    }


def land_all(landing: Path, lake: Path) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [raw_files],
        resources={
            "landing": LocalLanding(source_dir=str(landing)),
            "lake": LocalLake(root=str(lake)),
        },
        raise_on_error=False,
    )


def test_a_bad_export_on_a_good_lake_replaces_nothing(tmp_path: Path) -> None:
    landing, lake = tmp_path / "landing", tmp_path / "lake"
    write_exports(landing)
    assert land_all(landing, lake).success
    before = raw_zone(lake)
    assert sorted(re.sub(r"landed=\d{8}T\d{12}Z", "landed=<time>", p) for p in before) == sorted(
        f"raw/{t.raw_name}/{'batch=full' if t is RENTALS else 'landed=<time>'}/{name}"
        for t in SOURCE_TABLES
        for name in (t.file_name, MANIFEST)
    )

    write_exports(landing, users_line=USER.replace("U1", "U9"))  # a good new users.csv
    (landing / LOCATIONS.file_name).write_text("location_id,name\n1,x\n")  # a bad one
    (landing / "vehicles.csv").write_bytes("\n".join(["x", "é"]).encode("latin-1"))
    result = land_all(landing, lake)

    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.user_failure_data
    assert failure.description.startswith("Nothing landed (2 of 4 export(s) cannot be used")
    assert "locations.csv: missing column(s) ['location_name'" in failure.description
    assert "vehicles.csv is not valid utf-8 text: byte(s) 0xe9 at line 2" in failure.description
    assert raw_zone(lake) == before  # not even the good users.csv replaced the old one
    assert not [p for p in (lake / "raw").iterdir() if p.name.startswith(".")]


def test_a_new_snapshot_landing_keeps_the_earlier_one_as_history(tmp_path: Path) -> None:
    landing, lake = tmp_path / "landing", tmp_path / "lake"
    write_exports(landing)
    assert land_all(landing, lake).success
    folder = lake / "raw" / USERS.raw_name
    (first,) = folder.iterdir()
    kept = {p.name: p.read_bytes() for p in first.iterdir()}
    write_exports(landing, users_line=USER.replace("U1", "U9"))
    result = land_all(landing, lake)
    assert result.success
    older, newest = sorted(folder.iterdir())  # named by landing time: they sort as it does
    assert older == first and {p.name: p.read_bytes() for p in older.iterdir()} == kept
    assert sorted(p.name for p in newest.iterdir()) == [MANIFEST, USERS.file_name]
    assert "U9," in (newest / USERS.file_name).read_text()
    users = dg.AssetKey(["raw", USERS.name])
    metadata = next(
        m.metadata
        for m in result.asset_materializations_for_node("raw_files")
        if m.asset_key == users
    )
    assert metadata["row_count"].value == 1
    assert metadata["path"].value == str(newest / USERS.file_name)


def test_a_field_longer_than_pythons_default_csv_limit_is_kept(tmp_path: Path) -> None:
    notes = "x" * 200_000  # Python's csv refuses fields over 131,072 characters by default
    line = f'1,"Airport, {notes}",1 Rd,Boston,MA,02128,42.36,-71.0'
    rows, manifest = landed(tmp_path, LOCATIONS, f"{LOCATION_HEADER}\n{line}\n".encode())
    assert rows[1][2] == f"Airport, {notes}"
    assert (manifest.records, manifest.malformed) == (1, 0)


def test_two_stray_inch_marks_in_a_column_do_not_join_the_lines_between(tmp_path: Path) -> None:
    lines = [
        '1,Lot 12" wide,1 Rd,Boston,MA,02128,42.36,-71.0',  # a stray quote in a name
        "2,Downtown,2 Rd,Boston,MA,02108,42.35,-71.06",
        '3,Lot 14" wide,3 Rd,Boston,MA,02108,42.35,-71.06',  # and another, two lines on
        '4,"Name4,4 Rd,Boston,MA,02108,42.35,-71.06',  # a quote opening a field, never closed
        '5,"Name5,5 Rd,Boston,MA,02108,42.35,-71.06',
    ]
    rows, manifest = landed(tmp_path, LOCATIONS, "\n".join([LOCATION_HEADER, *lines]).encode())
    assert [row[0] for row in rows[1:]] == ["2", "3", "4", "5", "6"]  # one row per line
    assert [row[2] for row in rows[1:4]] == ['Lot 12" wide', "Downtown", 'Lot 14" wide']
    assert [row[-2] for row in rows[4:]] == lines[3:]  # malformed, their text kept
    assert (manifest.records, manifest.malformed, manifest.multiline_records) == (5, 2, 0)
