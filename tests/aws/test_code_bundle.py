"""code_bundle: a deterministic, content-addressed bundle that uploads only what is missing,
and the EMR bootstrap's folder with the pinned wheels it installs offline."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from car_rental_platform.code_bundle import (
    BOOTSTRAP_SCRIPT,
    DEPS_ZIP_NAME,
    EMR_REQUIREMENTS,
    WheelDownloadError,
    bootstrap_digest,
    bootstrap_key,
    bootstrap_keys,
    build_bootstrap,
    build_bundle,
    bundle_digest,
    bundle_keys,
    missing_keys,
    package_root,
    pinned_wheels,
    read_pins,
    upload_bootstrap,
    upload_bundle,
    wheels_uri,
)
from infra_scripts import upload_code
from tests.aws.support import AwsEnv, changed_lines, object_keys


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


UPLOAD_EVENTS = (
    "before-parameter-build.s3.PutObject",
    "before-parameter-build.s3.CreateMultipartUpload",
)


@contextmanager
def uploaded_keys(s3: Any) -> Iterator[list[str]]:
    """The keys ``s3`` uploads (whole or multipart) inside the block, in order."""
    keys: list[str] = []

    def record(params: dict, **_: object) -> None:
        keys.append(params["Key"])

    for event in UPLOAD_EVENTS:
        s3.meta.events.register(event, record)
    try:
        yield keys
    finally:
        for event in UPLOAD_EVENTS:
            s3.meta.events.unregister(event, record)


def test_second_upload_uploads_nothing(aws_env: AwsEnv, tmp_path: Path) -> None:
    s3 = aws_env.client("s3")
    s3.create_bucket(Bucket=aws_env.bucket)
    bundle = build_bundle(tmp_path)

    with uploaded_keys(s3) as puts:
        first = upload_bundle(s3, aws_env.bucket, bundle)
        uploaded = list(puts)
        second = upload_bundle(s3, aws_env.bucket, bundle)

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
    wheels = wheels_uri(aws_env.bucket)
    assert (
        f"upload           s3 code object {script} (EMR bootstrap action, and 7 pinned wheels "
        f"to {wheels})"
    ) in first
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


# --- the pinned wheels ----------------------------------------------------------------------

BOTO3_CLOSURE = {"boto3", "botocore", "jmespath", "python-dateutil", "s3transfer", "six", "urllib3"}


def test_the_pins_are_boto3_and_its_dependencies_at_exact_versions_with_hashes() -> None:
    pins = read_pins()
    assert {pin.name for pin in pins} == BOTO3_CLOSURE
    assert all(pin.version and len(pin.sha256) == 1 for pin in pins)
    assert all(len(digest) == 64 for pin in pins for digest in pin.sha256)


def test_the_bootstrap_bundle_holds_the_pinned_wheels_and_its_digest_is_stable(
    tmp_path: Path,
) -> None:
    digest_before_any_download = bootstrap_digest()
    first, second = build_bootstrap(), build_bootstrap()

    assert first == second
    assert first.digest == digest_before_any_download
    assert len(first.digest) == 12
    pins = {digest: pin.name for pin in read_pins() for digest in pin.sha256}
    found = {}
    for wheel in first.wheels:
        assert wheel.name.endswith("-none-any.whl"), "pure Python: x86_64 and aarch64 alike"
        found[pins[hashlib.sha256(wheel.read_bytes()).hexdigest()]] = wheel.name
    assert set(found) == BOTO3_CLOSURE
    assert found["boto3"].startswith("boto3-1.44.8-")
    names = list(first.files)
    assert names[-1] == "emr_bootstrap.sh", "the script goes last: it marks a complete folder"
    assert first.files["wheels/requirements.txt"] == EMR_REQUIREMENTS
    assert sorted(names[:-2]) == sorted(f"wheels/{name}" for name in found.values())
    keys = bootstrap_keys(first)
    assert keys["emr_bootstrap.sh"] == bootstrap_key()
    assert (
        keys["wheels/requirements.txt"]
        == f"scripts/bootstrap/{first.digest}/wheels/requirements.txt"
    )

    changed = tmp_path / "emr_requirements.txt"
    changed.write_text(EMR_REQUIREMENTS.read_text().replace("six==1.17.0", "six==1.16.0"))
    assert bootstrap_digest(requirements=changed) != first.digest, "a pin changes the folder"


def test_the_script_is_uploaded_after_its_wheels(aws_env: AwsEnv) -> None:
    s3 = aws_env.client("s3")
    s3.create_bucket(Bucket=aws_env.bucket)

    with uploaded_keys(s3) as order:
        upload_bootstrap(s3, aws_env.bucket)
        s3.delete_object(Bucket=aws_env.bucket, Key=bootstrap_key())  # an upload cut short
        upload_bootstrap(s3, aws_env.bucket)

    keys = list(bootstrap_keys(build_bootstrap()).values())
    assert order == keys + keys, "the whole folder again when its script is missing"
    assert object_keys(aws_env.bucket, "scripts/bootstrap/") == sorted(keys)


def _requirements(tmp_path: Path, pin: str) -> Path:
    path = tmp_path / "requirements.txt"
    path.write_text(pin + "\n")
    return path


def test_a_wrong_hash_or_a_corrupt_cache_never_reaches_the_bundle(tmp_path: Path) -> None:
    six_hash = next(p for p in read_pins() if p.name == "six").sha256[0]
    good = _requirements(tmp_path, f"six==1.17.0 --hash=sha256:{six_hash}")
    cache = tmp_path / "cache"

    (wheel,) = pinned_wheels(good, cache_dir=cache)
    wheel.write_bytes(b"corrupt")
    (again,) = pinned_wheels(good, cache_dir=cache)
    assert hashlib.sha256(again.read_bytes()).hexdigest() == six_hash, "downloaded again"

    wrong = _requirements(tmp_path, f"six==1.17.0 --hash=sha256:{'0' * 64}")
    with pytest.raises(WheelDownloadError, match="could not download the wheels pinned"):
        pinned_wheels(wrong, cache_dir=tmp_path / "other")
    assert not list((tmp_path / "other").rglob("*.whl")), "nothing unverified is cached"


FAKE_COMMANDS = {
    # The node's tools, played on this machine: sudo runs its command, dnf only says what it
    # would install, aws s3 cp copies from a folder standing for the bucket.
    "sudo": 'exec "$@"\n',
    "dnf": 'echo "dnf $*" >> "$FAKE_LOG"\n',
    "aws": (
        'echo "aws $*" >> "$FAKE_LOG"\n'
        'src="${@: -2:1}"; dst="${@: -1}"\n'
        'cp -r "$FAKE_S3/${src#s3://}." "$dst"\n'
    ),
}


def _no_network() -> bool:
    unshare = shutil.which("unshare")
    return unshare is None or subprocess.run([unshare, "-n", "true"]).returncode != 0


@pytest.mark.skipif(_no_network(), reason="needs unshare -n (a network namespace)")
def test_the_bootstrap_installs_boto3_from_the_bundle_with_no_network(tmp_path: Path) -> None:
    """emr_bootstrap.sh itself, in a network namespace with no interface but loopback, with a
    fresh virtualenv as the node's python3.11: pip finds everything in the bundle's wheels."""
    bundle = build_bootstrap()
    bucket = tmp_path / "s3"
    for name, key in bootstrap_keys(bundle).items():
        (bucket / "my-lake" / key).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(bundle.files[name], bucket / "my-lake" / key)
    wheels = wheels_uri("my-lake")
    node = tmp_path / "node"
    venv.create(node / "venv", with_pip=True)
    bin_dir = node / "bin"
    bin_dir.mkdir()
    for name, body in FAKE_COMMANDS.items():
        (bin_dir / name).write_text("#!/bin/bash\n" + body)
        (bin_dir / name).chmod(0o755)
    # A wrapper, not a symlink: Python finds its virtualenv from the path it was started by.
    python = bin_dir / "python3.11"
    python.write_text(f'#!/bin/bash\nexec "{node / "venv" / "bin" / "python"}" "$@"\n')
    python.chmod(0o755)
    log = node / "commands.log"
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "HOME": str(node),
        "FAKE_LOG": str(log),
        "FAKE_S3": str(bucket),
        # No pip configuration of this machine (its extra indexes and find-links) may help.
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_NO_COMPILE": "1",  # byte-compiling botocore is most of the install time
    }

    done = subprocess.run(
        ["unshare", "-n", "bash", str(BOOTSTRAP_SCRIPT), "3.11", wheels, "eu-west-1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert done.returncode == 0, done.stderr
    assert "bootstrap: python 3.11" in done.stdout
    assert "with boto3 1.44.8" in done.stdout
    dnf, aws = log.read_text().splitlines()
    assert dnf == "dnf install -y python3.11 python3.11-pip"
    assert aws.startswith(f"aws s3 cp --recursive --only-show-errors --region eu-west-1 {wheels} ")
    where = subprocess.run(
        [str(node / "venv" / "bin" / "python"), "-c", "import boto3; print(boto3.__file__)"],
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )
    assert where.stdout.startswith(str(node / "venv")), "installed into the node's python only"
