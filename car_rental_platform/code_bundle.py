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

The EMR bootstrap action ``emr_bootstrap.sh`` (it installs the Python PySpark runs on, and the
jobs' packages) is content-addressed on its own, with the wheels it installs:
``scripts/bootstrap/<digest>/emr_bootstrap.sh`` beside ``wheels/requirements.txt`` (a copy of
``emr_requirements.txt``, the pins with their sha256) and ``wheels/*.whl``. The digest is of the
script and the pins; the pins' hashes fix the wheels' bytes, so it is known without downloading.
A cluster's bootstrap path changes only when the script or a pin does, not with every change of
the jobs, and the 17 MB of wheels are uploaded once per pin set, only for clusters that boot.
"""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
import subprocess
import sys
import tempfile
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
BOOTSTRAP_PYTHON = "3.11"
"""Amazon Linux 2023's ``python3.11``, which the bootstrap action installs for PySpark."""
EMR_REQUIREMENTS = Path(__file__).with_name("emr_requirements.txt")
"""The one place the jobs' Python packages on EMR (boto3 and its dependencies) are pinned."""
WHEELS_FOLDER = "wheels"
REQUIREMENTS_NAME = "requirements.txt"
PURE_WHEEL_SUFFIX = "-none-any.whl"
WHEEL_CACHE = Path.home() / ".cache" / "car-rental-platform" / "emr-wheels"
"""Where ``pinned_wheels`` keeps what it downloaded, one folder per pin set."""
PIP_DOWNLOAD_OPTIONS = (
    "--quiet",
    "--disable-pip-version-check",
    "--no-deps",  # the pins are the whole set: pip install --no-index on the node proves it
    "--only-binary=:all:",
    "--require-hashes",
    "--python-version",
    BOOTSTRAP_PYTHON,
)


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


# --- the EMR bootstrap action and the wheels it installs -------------------------------------


@dataclass(frozen=True)
class Pin:
    """One requirement of ``emr_requirements.txt``: an exact version and its wheels' sha256."""

    name: str
    version: str
    sha256: tuple[str, ...]


class WheelDownloadError(RuntimeError):
    """The pinned wheels could not be fetched (or are not what the pins say)."""


def read_pins(requirements: Path = EMR_REQUIREMENTS) -> list[Pin]:
    """Every ``name==version --hash=sha256:...`` line (continuations joined, comments dropped)."""
    text = requirements.read_text().replace("\\\n", " ")
    pins = []
    for line in text.splitlines():
        tokens = line.split("#", 1)[0].split()
        if not tokens:
            continue
        name, separator, version = tokens[0].partition("==")
        hashes = tuple(t.removeprefix("--hash=sha256:") for t in tokens[1:] if "sha256:" in t)
        if not separator or not hashes or len(hashes) != len(tokens) - 1:
            raise ValueError(f"{requirements.name}: {line.strip()!r} is not name==version --hash=")
        pins.append(Pin(name=name, version=version, sha256=hashes))
    return pins


def _sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _matching_pins(wheels: list[Path], pins: list[Pin]) -> str | None:
    """Why ``wheels`` are not exactly one pure-Python wheel per pin, or None when they are."""
    by_hash = {digest: pin for pin in pins for digest in pin.sha256}
    found = {}
    for wheel in wheels:
        if not wheel.name.endswith(PURE_WHEEL_SUFFIX):
            return f"{wheel.name} is not a pure-Python wheel (*{PURE_WHEEL_SUFFIX})"
        pin = by_hash.get(_sha256(wheel))
        if pin is None:
            return f"{wheel.name} matches no pinned hash"
        found[pin.name] = wheel
    missing = sorted(pin.name for pin in pins if pin.name not in found)
    return f"no wheel for {', '.join(missing)}" if missing else None


def pinned_wheels(
    requirements: Path = EMR_REQUIREMENTS, *, cache_dir: Path | None = None
) -> list[Path]:
    """The wheels ``requirements`` pins, downloaded once per pin set into ``<cache>/<digest>/``.

    ``pip download --require-hashes`` fetches them (from PyPI, or whatever index pip is
    configured with) and checks every hash; a cached folder is checked again before use.
    """
    pins = read_pins(requirements)
    key = bundle_digest({f"{p.name}=={p.version}": " ".join(p.sha256).encode() for p in pins})
    folder = (cache_dir or WHEEL_CACHE) / key
    if folder.is_dir() and _matching_pins(sorted(folder.glob("*.whl")), pins) is None:
        return sorted(folder.glob("*.whl"))
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{key}-", dir=folder.parent) as scratch:
        download = Path(scratch) / "wheels"
        command = [sys.executable, "-m", "pip", "download", *PIP_DOWNLOAD_OPTIONS]
        command += ["--dest", str(download), "-r", str(requirements)]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        wheels = sorted(download.glob("*.whl"))
        failed = done.stderr.strip()[-2000:]
        problem = _matching_pins(wheels, pins) if done.returncode == 0 else failed
        if problem:
            raise WheelDownloadError(
                f"could not download the wheels pinned in {requirements.name} (the EMR bootstrap "
                f"installs them offline; this needs PyPI, or a pip index, once): {problem}"
            )
        if folder.is_dir():  # a stale or partial folder: replaced whole
            shutil.rmtree(folder)
        try:
            download.rename(folder)
        except OSError:  # another process cached the same pins first
            if _matching_pins(sorted(folder.glob("*.whl")), pins) is not None:
                raise
    return sorted(folder.glob("*.whl"))


@dataclass(frozen=True)
class BootstrapBundle:
    """The bootstrap action's folder: the script, the pins and the wheels they name."""

    digest: str
    script: Path
    requirements: Path
    wheels: tuple[Path, ...]

    @property
    def files(self) -> dict[str, Path]:
        """Name under ``<prefix>/bootstrap/<digest>/`` -> local file, in upload order.

        The script goes last: once it is in S3, the whole folder is (see ``upload_bootstrap``).
        """
        wheels = {f"{WHEELS_FOLDER}/{wheel.name}": wheel for wheel in self.wheels}
        return {
            **wheels,
            f"{WHEELS_FOLDER}/{REQUIREMENTS_NAME}": self.requirements,
            self.script.name: self.script,
        }


def bootstrap_digest(script: Path = BOOTSTRAP_SCRIPT, requirements: Path = EMR_REQUIREMENTS) -> str:
    """Digest of the script and the pins: the pins' hashes fix the wheels' bytes, so it is
    known without downloading anything (a cluster request is built from it)."""
    return bundle_digest(
        {
            script.name: script.read_bytes(),
            f"{WHEELS_FOLDER}/{REQUIREMENTS_NAME}": requirements.read_bytes(),
        }
    )


def bootstrap_folder(
    prefix: str = Zone.SCRIPTS.value,
    script: Path = BOOTSTRAP_SCRIPT,
    requirements: Path = EMR_REQUIREMENTS,
) -> str:
    """``<prefix>/bootstrap/<digest>``."""
    return _bootstrap_folder(prefix, bootstrap_digest(script, requirements))


def _bootstrap_folder(prefix: str, digest: str) -> str:
    return f"{prefix.strip('/')}/{BOOTSTRAP_FOLDER}/{digest}"


def bootstrap_key(
    prefix: str = Zone.SCRIPTS.value,
    script: Path = BOOTSTRAP_SCRIPT,
    requirements: Path = EMR_REQUIREMENTS,
) -> str:
    """``<prefix>/bootstrap/<digest>/emr_bootstrap.sh``."""
    return f"{bootstrap_folder(prefix, script, requirements)}/{script.name}"


def bootstrap_uri(bucket: str, prefix: str = Zone.SCRIPTS.value) -> str:
    return f"s3://{bucket}/{bootstrap_key(prefix)}"


def wheels_uri(bucket: str, prefix: str = Zone.SCRIPTS.value) -> str:
    """``s3://<bucket>/<prefix>/bootstrap/<digest>/wheels/``: the script's second argument."""
    return f"s3://{bucket}/{bootstrap_folder(prefix)}/{WHEELS_FOLDER}/"


def build_bootstrap(*, cache_dir: Path | None = None) -> BootstrapBundle:
    """The script, the pins and their wheels (downloaded unless cached)."""
    return BootstrapBundle(
        digest=bootstrap_digest(),
        script=BOOTSTRAP_SCRIPT,
        requirements=EMR_REQUIREMENTS,
        wheels=tuple(pinned_wheels(cache_dir=cache_dir)),
    )


def bootstrap_keys(bundle: BootstrapBundle, prefix: str = Zone.SCRIPTS.value) -> dict[str, str]:
    """Name -> S3 key of every file of the folder, in upload order (the script last)."""
    base = _bootstrap_folder(prefix, bundle.digest)
    return {name: f"{base}/{name}" for name in bundle.files}


def upload_bootstrap(
    s3_client: BaseClient,
    bucket: str,
    *,
    prefix: str = Zone.SCRIPTS.value,
    cache_dir: Path | None = None,
) -> str:
    """Upload the bootstrap folder unless that very version is in S3; return the script's URI.

    The script is uploaded last, so its key standing in S3 means the wheels are there too: an
    upload cut short is redone whole by the next call. Only then are the wheels downloaded.
    """
    key = bootstrap_key(prefix)
    if not s3_object_exists(s3_client, bucket, key):
        bundle = build_bootstrap(cache_dir=cache_dir)
        for name, object_key in bootstrap_keys(bundle, prefix).items():
            s3_client.upload_file(str(bundle.files[name]), bucket, object_key)
    return f"s3://{bucket}/{key}"
