"""Fixtures of the report tests; the sample data lives in sample.py."""

from __future__ import annotations

from typing import Callable

import pytest

from dmvpnkit import reports

from .sample import build_run


@pytest.fixture
def make_run() -> Callable[..., reports.Run]:
    """build_run(report_dir, impl="frr", outcomes={index: outcome}, phase=3, host=...)."""
    return build_run
