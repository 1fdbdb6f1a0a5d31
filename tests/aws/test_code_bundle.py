"""code_bundle: a deterministic, content-addressed bundle that uploads only what is missing."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from car_rental_platform.code_bundle import (
    BOOTSTRAP_SCRIPT,
    DEPS_ZIP_NAME,
    bootstrap_key,
    build_bundle,
    bundle_digest,
    bundle_keys,
    missing_keys,
    package_root,
    upload_bootstrap,
    upload_bundle,
)
from infra_scripts import upload_code
from tests.aws.support import AwsEnv, changed_lines


def test_same_code_gives_the_same_digest_and_bytes(tmp_path: Path) -> None:
    first = build_bundle(tmp_path / "a")
    second = build_bundle(tmp_path / "b")

    assert first.digest == second.digest
    assert len(first.digest) == 12
    assert first.deps_zip.read_bytes() == second.deps_zip.read_bytes()
    assert first.deps_zip.parent.name == first.digest


def test_digest_depends_on_names_and_contents() -> None:
    files = {"spark_jobs/a.py": b"x = 1\n", "spark_jobs/b.py": b"y = 2\n"}
    assert bundle_digest(files) == bundle_digest(dict(reversed(files.items())))
    assert bundle_digest(files) != bundle_digest(files | {"spark_jobs/a.py": b"x = 2\n"})
    renamed = {"spark_jobs/c.py": files["spark_jobs/a.py"], "spark_jobs/b.py": b"y = 2\n"}
    assert bundle_digest(files) != bundle_digest(renamed)


def test_bundle_holds_every_module_of_both_packages(tmp_path: Path) -> None:
    bundle = build_bundle(tmp_path)
    job_modules = sorted(p.name for p in package_root("spark_jobs").glob("*.py"))

    with zipfile.ZipFile(bundle.deps_zip) as archive:
        infos = archive.infolist()
    names = [info.filename for info in infos]
    assert names == sorted(names)
    assert {info.date_time for info in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert {f"spark_jobs/{name}" for name in job_modules} <= set(names)
    assert "dagster_pipes/__init__.py" in names
    assert not [n for n in names if "__pycache__" in n or not n.endswith(".py")]
    assert sorted(bundle.scripts) == [n for n in job_modules if not n.startswith("__")]
    contract = bundle.scripts["contract.py"].read_bytes()
    assert contract == (package_root("spark_jobs") / "contract.py").read_bytes()


def test_zip_alone_is_enough_for_py_files(tmp_path: Path) -> None:
    """What EMR does with --py-files: import our jobs and dagster_pipes from the zip only."""
    bundle = build_bundle(tmp_path)
    code = (
        f"import sys; sys.path.insert(0, {str(bundle.deps_zip)!r}); "
        "import dagster_pipes, spark_jobs.contract; "
        "print(dagster_pipes.__file__); print(spark_jobs.contract.__file__)"
    )
    # -S: no site-packages, so nothing can come from the virtualenv.
    result = subprocess.run(
        [sys.executable, "-S", "-c", code], capture_output=True, text=True, cwd=tmp_path, check=True
    )
    assert all(line.startswith(str(bundle.deps_zip)) for line in result.stdout.splitlines())


def test_second_upload_uploads_nothing(aws_env: AwsEnv, tmp_path: Path) -> None:
    s3 = aws_env.client("s3")
    s3.create_bucket(Bucket=aws_env.bucket)
    bundle = build_bundle(tmp_path)
    puts: list[str] = []

    def count(params: dict, **_: object) -> None:
        puts.append(params["Key"])

    s3.meta.events.register("before-parameter-build.s3.PutObject", count)
    s3.meta.events.register("before-parameter-build.s3.CreateMultipartUpload", count)
    try:
        first = upload_bundle(s3, aws_env.bucket, bundle)
        uploaded = list(puts)
        second = upload_bundle(s3, aws_env.bucket, bundle)
    finally:
        s3.meta.events.unregister("before-parameter-build.s3.PutObject", count)
        s3.meta.events.unregister("before-parameter-build.s3.CreateMultipartUpload", count)

    assert sorted(uploaded) == sorted(bundle_keys(bundle).values())
    assert puts == uploaded, "the second upload sent nothing"
    assert first == second
    assert first[DEPS_ZIP_NAME] == f"s3://{aws_env.bucket}/scripts/{bundle.digest}/deps.zip"
    assert missing_keys(s3, aws_env.bucket, bundle) == {}
    body = s3.get_object(Bucket=aws_env.bucket, Key=bundle_keys(bundle)["contract.py"])["Body"]
    assert body.read() == bundle.scripts["contract.py"].read_bytes()


def test_cli_dry_run_plans_uploads_then_real_runs_settle(
    aws_env: AwsEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    aws_env.client("s3").create_bucket(Bucket=aws_env.bucket)

    assert upload_code.main([*aws_env.cli_args(), "--dry-run"]) == 0
    planned = changed_lines(capsys.readouterr().out)
    assert planned and all(line.startswith("would upload") for line in planned)
    assert "Contents" not in aws_env.client("s3").list_objects_v2(Bucket=aws_env.bucket)

    assert upload_code.main(aws_env.cli_args()) == 0
    first = capsys.readouterr().out
    script = f"s3://{aws_env.bucket}/{bootstrap_key()}"
    assert f"upload           s3 code object {script} (EMR bootstrap action)" in first
    assert upload_code.main(aws_env.cli_args()) == 0
    second = capsys.readouterr().out
    assert changed_lines(second) == []
    assert "nothing to change" in second


def test_bootstrap_script_is_content_addressed_on_its_own(aws_env: AwsEnv, tmp_path: Path) -> None:
    s3 = aws_env.client("s3")
    s3.create_bucket(Bucket=aws_env.bucket)
    other = tmp_path / "emr_bootstrap.sh"
    other.write_bytes(BOOTSTRAP_SCRIPT.read_bytes() + b"# changed\n")
    assert bootstrap_key(script=other) != bootstrap_key()
    assert bootstrap_key("code/") == "code/" + bootstrap_key().removeprefix("scripts/")

    uri = upload_bootstrap(s3, aws_env.bucket)
    assert uri == f"s3://{aws_env.bucket}/{bootstrap_key()}"
    s3.put_object(Bucket=aws_env.bucket, Key=bootstrap_key(), Body=b"# marker")
    assert upload_bootstrap(s3, aws_env.bucket) == uri
    body = s3.get_object(Bucket=aws_env.bucket, Key=bootstrap_key())["Body"].read()
    assert body == b"# marker", "an existing key holds these bytes: not uploaded again"
