"""Files of the lake through Hadoop's FileSystem API (the session's JVM): the same calls on a
local disk, HDFS and S3, for what Spark's readers and writers do not do (moves, listings)."""

from __future__ import annotations

from pyspark.sql import SparkSession

from spark_jobs.contract import LANDED_FOLDER
from spark_jobs.raw_format import MANIFEST


class LakeFiles:
    """Hadoop's FileSystem API through the session's JVM: the same calls on disk and S3."""

    def __init__(self, spark: SparkSession, root: str) -> None:
        self._jvm = spark.sparkContext._jvm
        self._fs = self.path(root).getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())

    def path(self, text: str):
        return self._jvm.org.apache.hadoop.fs.Path(text)

    def exists(self, text: str) -> bool:
        return bool(self._fs.exists(self.path(text)))

    def delete(self, text: str) -> None:
        self._fs.delete(self.path(text), True)

    def read_text(self, text: str) -> str:
        """A small UTF-8 file's text (commons-io ships with Spark)."""
        stream = self._fs.open(self.path(text))
        try:
            return self._jvm.org.apache.commons.io.IOUtils.toString(stream, "UTF-8")
        finally:
            stream.close()

    def write_text(self, text: str, content: str) -> None:
        stream = self._fs.create(self.path(text), True)
        try:
            stream.write(bytearray(content.encode("utf-8")))
        finally:
            stream.close()

    def glob(self, pattern: str) -> list[tuple[str, bool]]:
        """(path, is a folder) of what matches ``pattern``."""
        found = self._fs.globStatus(self.path(pattern)) or []
        return [(s.getPath().toString(), bool(s.isDirectory())) for s in found]

    def replace(self, source: str, target: str) -> None:
        """Move ``source`` to ``target``, deleting what ``target`` held (file or folder)."""
        target_path = self.path(target)
        self._fs.delete(target_path, True)
        self._fs.mkdirs(target_path.getParent())
        if not self._fs.rename(self.path(source), target_path):
            raise OSError(f"could not move {source} into place at {target}")


def newest_landing(spark: SparkSession, folder: str) -> str:
    """The newest complete landing of a snapshot: its newest ``landed=<UTC>/`` folder with a
    manifest (a landing still copying is a hidden sibling, which the pattern skips), or
    ``folder`` itself for a raw zone written before landings were kept."""
    files = LakeFiles(spark, folder)
    found = [
        path
        for path, is_folder in files.glob(f"{folder.rstrip('/')}/{LANDED_FOLDER}*")
        if is_folder and files.exists(f"{path}/{MANIFEST}")
    ]
    return max(found, key=lambda path: path.rsplit("/", 1)[1]) if found else folder
