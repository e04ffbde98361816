import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]


@pytest.fixture
def report_dir() -> Iterator[Path]:
    """A --report-dir for FRR labs run through pytester: outside pytest's 0700 tmp tree,
    which FRR's daemons (user frr, config read after dropping root) cannot enter."""
    d = Path(tempfile.mkdtemp(prefix="dk-report-", dir="/tmp"))
    d.chmod(0o755)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)
