"""dmvpnkit.reports: the results model (results.json, schema 3), merging runs into an
interop matrix, and the static HTML report.

For the pytest plugin:
    run = reports.from_records(records, report_dir=..., phase=..., impl=..., ...)
    reports.write(report_dir, run)          # results.json + index.html + cases/

Importing this package is cheap: Jinja2 and jsonschema load when first used.
"""

from __future__ import annotations

from .build import case_id, from_records
from .compare import Difference, compare
from .evidence import collect as collect_evidence
from .evidence import lab_info
from .merge import merge
from .model import (
                    LEVELS,
                    OUTCOMES,
                    SCHEMA,
                    CaseResult,
                    Evidence,
                    LabInfo,
                    Matrix,
                    NodeInfo,
                    ReportError,
                    Run,
                    TimelineEntry,
                    as_matrix,
                    load,
                    load_matrix,
)
from .render import summary_text, write
from .schema import validate

__all__ = [
    "LEVELS", "OUTCOMES", "SCHEMA", "CaseResult", "Difference", "Evidence", "LabInfo", "Matrix", "NodeInfo",
    "ReportError", "Run", "TimelineEntry", "as_matrix", "case_id", "collect_evidence", "compare", "from_records",
    "lab_info", "load", "load_matrix", "merge", "summary_text", "validate", "write",
]
