"""Content-addressed bundle of the Spark code for EMR: the scripts plus a ``--py-files`` zip.

The Dagster EMR resource uses it at run time and ``infra_scripts.upload_code`` ahead of time, so
it lives in the code location and has no CLI concerns: build the
bundle, upload what is missing, use the returned URIs in ``spark-submit``::

    bundle = build_bundle(tmp_dir)
    uris = upload_bundle(s3, "my-lake", bundle)
    # spark-submit --py-files uris["deps.zip"] uris["transform_job.py"] ...

Keys are ``scripts/<digest>/<name>`` where the digest is a sha256 of every file's name and bytes:
the same code always gives the same keys (so a second upload uploads nothing), and a step that
is running keeps reading its own version while a new one is uploaded beside it. The zip is built
deterministically (sorted entries, fixed timestamps and permissions).

The EMR bootstrap action ``emr_bootstrap.sh`` (it installs the Python PySpark runs on) is
content-addressed on its own, ``scripts/bootstrap/<digest>/emr_bootstrap.sh``: a cluster's
bootstrap path then changes only when that script does, not with every change of the jobs.
"""

from __future__ import annotations

import hashlib
import importlib.util
import zipfile
from dataclasses import dataclass
from pathlib import Path

from botocore.client import BaseClient
from botocore.exceptions import ClientError

from spark_jobs.contract import Zone

CODE_PACKAGE = "spark_jobs"
BUNDLED_PACKAGES = (CODE_PACKAGE, "dagster_pipes")
"""Packages shipped in the zip: our jobs and Dagster Pipes (pure Python, stdlib only)."""
DEPS_ZIP_NAME = "deps.zip"
DIGEST_LENGTH = 12
_ZIP_TIMESTAMP = (1980, 1, 1, 0, 0, 0)  # the earliest a zip can store: no build-time leaks in
_ZIP_FILE_MODE = 0o644 << 16
BOOTSTRAP_SCRIPT = Path(__file__).with_name("emr_bootstrap.sh")
"""The EMR bootstrap action installing PySpark's Python on every node (see emr_cluster.py)."""
BOOTSTRAP_FOLDER = "bootstrap"


def s3_object_exists(s3: BaseClient, bucket: str, key: str) -> bool:
    """True if ``key`` exists; a missing bucket counts as missing (dry runs of a new bucket)."""
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", ""))
        if code in {"404", "NoSuchKey", "NoSuchBucket"}:
            return False
        raise
    return True


@dataclass(frozen=True)
class CodeBundle:
    """A built bundle: its digest, the entry scripts and the ``--py-files`` zip, on local disk."""

    digest: str
    scripts: dict[str, Path]
    """Script file name (``transform_job.py``) -> local copy."""
    deps_zip: Path

    @property
    def files(self) -> dict[str, Path]:
        """Every file to upload, by the name it gets under ``<prefix>/<digest>/``."""
        return {**self.scripts, DEPS_ZIP_NAME: self.deps_zip}


def package_root(package: str) -> Path:
    """Directory of an importable package (installed, editable or on ``sys.path``)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"package {package!r} is not importable")
    return Path(next(iter(spec.submodule_search_locations)))


def package_sources(package: str) -> dict[str, bytes]:
    """``<package>/<relative path>`` -> bytes of every ``.py`` file of the package."""
    root = package_root(package)
    return {
        f"{package}/{path.relative_to(root).as_posix()}": path.read_bytes()
        for path in sorted(root.rglob("*.py"))
        if "__pycache__" not in path.parts
    }


def bundle_digest(files: dict[str, bytes]) -> str:
    """Short sha256 over names and contents (a rename changes it too)."""
    sha = hashlib.sha256()
    for name in sorted(files):
        sha.update(name.encode())
        sha.update(b"\0")
        sha.update(hashlib.sha256(files[name]).digest())
    return sha.hexdigest()[:DIGEST_LENGTH]


def write_deterministic_zip(path: Path, files: dict[str, bytes]) -> None:
    """A zip whose bytes depend only on ``files``: sorted entries, fixed times and modes."""
    with zipfile.ZipFile(path, "w") as archive:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=_ZIP_TIMESTAMP)
            info.external_attr = _ZIP_FILE_MODE
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, files[name], compresslevel=9)


def is_entry_script(name: str) -> bool:
    """Top-level modules of the code package are spark-submit scripts; ``__init__`` is not."""
    return "/" not in name and not name.startswith("__")


def build_bundle(out_dir: Path) -> CodeBundle:
    """Snapshot the code once, then write scripts and zip from that snapshot into ``out_dir``.

    Reading every file once means the digest always describes exactly the bytes written, even if
    someone edits a job while the bundle is built.
    """
    files: dict[str, bytes] = {}
    for package in BUNDLED_PACKAGES:
        files.update(package_sources(package))
    digest = bundle_digest(files)
    target = Path(out_dir) / digest
    target.mkdir(parents=True, exist_ok=True)
    scripts: dict[str, Path] = {}
    prefix = f"{CODE_PACKAGE}/"
    for name, data in files.items():
        relative = name.removeprefix(prefix)
        if name.startswith(prefix) and is_entry_script(relative):
            scripts[relative] = target / relative
            scripts[relative].write_bytes(data)
    deps_zip = target / DEPS_ZIP_NAME
    write_deterministic_zip(deps_zip, files)
    return CodeBundle(digest=digest, scripts=dict(sorted(scripts.items())), deps_zip=deps_zip)


def bundle_keys(bundle: CodeBundle, prefix: str = Zone.SCRIPTS.value) -> dict[str, str]:
    """Local name -> S3 key (``scripts/<digest>/<name>``)."""
    base = f"{prefix.strip('/')}/{bundle.digest}"
    return {name: f"{base}/{name}" for name in bundle.files}


def missing_keys(
    s3_client: BaseClient, bucket: str, bundle: CodeBundle, *, prefix: str = Zone.SCRIPTS.value
) -> dict[str, str]:
    """Local name -> key of the files not yet in the bucket.

    An existing key already holds these exact bytes (the key is their digest), so only absent
    keys need uploading.
    """
    return {
        name: key
        for name, key in bundle_keys(bundle, prefix).items()
        if not s3_object_exists(s3_client, bucket, key)
    }


def upload_bundle(
    s3_client: BaseClient, bucket: str, bundle: CodeBundle, *, prefix: str = Zone.SCRIPTS.value
) -> dict[str, str]:
    """Upload the files not yet in S3; return local name -> ``s3://`` URI of every file."""
    for name, key in missing_keys(s3_client, bucket, bundle, prefix=prefix).items():
        s3_client.upload_file(str(bundle.files[name]), bucket, key)
    return {name: f"s3://{bucket}/{key}" for name, key in bundle_keys(bundle, prefix).items()}


# --- the EMR bootstrap action ---------------------------------------------------------------


def bootstrap_key(prefix: str = Zone.SCRIPTS.value, script: Path = BOOTSTRAP_SCRIPT) -> str:
    """``<prefix>/bootstrap/<digest>/emr_bootstrap.sh``, the digest being of the script's bytes."""
    digest = hashlib.sha256(script.read_bytes()).hexdigest()[:DIGEST_LENGTH]
    return f"{prefix.strip('/')}/{BOOTSTRAP_FOLDER}/{digest}/{script.name}"


def bootstrap_uri(bucket: str, prefix: str = Zone.SCRIPTS.value) -> str:
    return f"s3://{bucket}/{bootstrap_key(prefix)}"


def upload_bootstrap(
    s3_client: BaseClient, bucket: str, *, prefix: str = Zone.SCRIPTS.value
) -> str:
    """Upload the bootstrap script unless that very version is in S3; return its ``s3://`` URI."""
    key = bootstrap_key(prefix)
    if not s3_object_exists(s3_client, bucket, key):
        s3_client.upload_file(str(BOOTSTRAP_SCRIPT), bucket, key)
    return f"s3://{bucket}/{key}"
