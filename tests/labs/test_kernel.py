"""Lab kernel choice and the UML guest's command forwarding."""

from __future__ import annotations

import io
import os
import sys
import uuid

import pytest

from dmvpnkit.labs import kernel
from dmvpnkit.labs.uml import Guest

pytestmark = pytest.mark.lab


def test_probe_names_what_is_missing() -> None:
    report = kernel.probe()
    if report.ok:
        assert kernel.choose() == "host"
        pytest.skip("this host kernel has everything; nothing to name")
    with pytest.raises(kernel.NoLabKernel) as ei:
        kernel.choose("host")
    assert all(m.split()[0] in str(ei.value) for m in report.missing)
    if kernel.uml_available():
        assert kernel.choose() == "uml"


def test_guest_forwards_output_status_and_files(tmp_path) -> None:
    if not kernel.uml_available():
        pytest.skip("user-mode-linux not installed")
    guest = Guest("k" + uuid.uuid4().hex[:8])
    out, err = io.BytesIO(), io.BytesIO()
    try:
        guest.start()
        script = f"uname -r; echo to-stderr >&2; echo made > {tmp_path}/f; exit 7"
        assert guest.run(["sh", "-c", script], stdout=out, stderr=err) == 7
        assert guest.run([sys.executable, "-c", "import os; print(os.environ['DMVPNKIT_IN_GUEST'])"],
                         stdout=out, stderr=err) == 0
        # stdin from a file or /dev/null (CI's, cron's), which epoll refuses: sent whole, then EOF
        (tmp_path / "in").write_bytes(b"x" * 5000 + b"\n")
        with open(tmp_path / "in", "rb") as f:
            assert guest.run(["wc", "-c"], stdin=f, stdout=out, stderr=err) == 0
        with open(os.devnull, "rb") as f:
            assert guest.run(["wc", "-c"], stdin=f, stdout=out, stderr=err) == 0
    finally:
        guest.stop()
    assert out.getvalue().decode().splitlines() == [kernel.UML_MODULES.iterdir().__next__().name, "1", "5001", "0"]
    assert err.getvalue() == b"to-stderr\n"
    assert (tmp_path / "f").read_text() == "made\n"      # the guest writes the host's filesystem
    assert not guest.dir.exists() and not guest.running()
