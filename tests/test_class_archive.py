"""The archive of Spark's classes: named for its JDK and jars, given to the JVM only when built,
and the one ``make install`` built is mapped by a JVM started as local Spark starts one."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from car_rental_platform.java import ensure_java
from car_rental_platform.resources import class_archive
from car_rental_platform.resources.spark import local_spark_config

SHARED = "source: shared objects file (top)"
"""How ``-Xlog:class+load`` names a class mapped from a dynamic archive."""


def fake_install(root: Path) -> tuple[Path, Path]:
    java = root / "jdk" / "bin" / "java"
    java.parent.mkdir(parents=True)
    java.write_bytes(b"java")
    jars = root / "spark" / "jars"
    jars.mkdir(parents=True)
    for name in ("spark-core.jar", "spark-sql.jar"):
        (jars / name).write_bytes(b"jar")
    return java, root / "spark"


def test_the_archive_name_follows_the_java_runtime_and_the_jars(tmp_path: Path) -> None:
    java, spark = fake_install(tmp_path)
    first = class_archive.fingerprint(java, spark)
    assert class_archive.fingerprint(java, spark) == first
    (spark / "jars" / "spark-sql.jar").write_bytes(b"upgraded")
    upgraded = class_archive.fingerprint(java, spark)
    assert upgraded != first
    (spark / "jars" / "hadoop.jar").write_bytes(b"jar")
    assert class_archive.fingerprint(java, spark) not in (first, upgraded)
    os.utime(java, ns=(1, 1))
    assert len({first, upgraded, class_archive.fingerprint(java, spark)}) == 3


def test_the_jvm_is_given_the_archive_only_once_it_is_built(tmp_path: Path) -> None:
    assert class_archive.sharing_options(tmp_path) == []
    path = class_archive.archive_path(tmp_path)
    assert path is not None and path.parent == tmp_path
    path.write_bytes(b"")
    assert class_archive.sharing_options(tmp_path) == [f"-XX:SharedArchiveFile={path}"]


def test_local_runs_map_the_archive_make_install_built() -> None:
    """``make install`` (the README's test command runs it first) built this environment's
    archive; the runs' configuration names it, and ``-Xshare:on`` (which refuses to start
    rather than run without it) shows Spark's launcher mapping its classes from it."""
    ensure_java()
    path = class_archive.archive_path()
    assert path is not None and path.is_file(), "make install builds the archive"
    options = local_spark_config()["spark.driver.extraJavaOptions"]
    assert f"-XX:SharedArchiveFile={path}" in options.split()
    assert (
        f"-XX:SharedArchiveFile={path}"
        not in local_spark_config(class_archive=False)["spark.driver.extraJavaOptions"].split()
    )
    spark_submit = class_archive.spark_home() / "bin" / "spark-submit"

    def start(archive: Path) -> subprocess.CompletedProcess[str]:
        opts = f"-XX:SharedArchiveFile={archive} -Xshare:on -Xlog:class+load=info"
        env = {**os.environ, "SPARK_SUBMIT_OPTS": opts}
        return subprocess.run(
            [str(spark_submit), "--version"], env=env, capture_output=True, text=True
        )

    mapped = start(path)
    assert mapped.returncode == 0, mapped.stderr[-2000:]
    spark_classes = [
        line
        for line in mapped.stdout.splitlines()
        if "org.apache.spark." in line and SHARED in line
    ]
    assert len(spark_classes) > 100
    missing = start(path.with_name("missing.jsa"))
    assert missing.returncode != 0
    assert "Unable to use shared archive" in missing.stdout + missing.stderr
