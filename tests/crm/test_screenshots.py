"""`make screenshots` (bin/screenshots): demo data in a throwaway database, shot in Chromium,
one PNG per page, user and width."""

import struct
import subprocess
import sys

from tests.processes import ROOT

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
EXPECTED_WIDTHS = {
    "dashboard-rep-1366.png": 1366,
    "dashboard-rep-800.png": 800,
    "dashboard-manager-1366.png": 1366,
    "dashboard-manager-800.png": 800,
    "admin-periodic-tasks-1366.png": 1366,
    "leads-rep-1366.png": 1366,
    "leads-rep-800.png": 800,
    "lead-rep-1366.png": 1366,
    "contacts-manager-1366.png": 1366,
    "contact-manager-1366.png": 1366,
    "accounts-manager-1366.png": 1366,
    "account-manager-1366.png": 1366,
    "account-manager-800.png": 800,
    "invoices-finance-1366.png": 1366,
    "invoices-finance-800.png": 800,
    "invoice-finance-1366.png": 1366,
    "email-rep-1366.png": 1366,
    "search-manager-1366.png": 1366,
    "away-manager-1366.png": 1366,
    "covering-rep-1366.png": 1366,
    "settings-rep-800.png": 800,
    "time-zones-rep-800.png": 800,
}


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from the IHDR chunk, which a PNG must start with."""
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_screenshots_are_pngs_of_each_page_at_each_width(tmp_path):
    done = subprocess.run(
        [sys.executable, str(ROOT / "bin" / "screenshots"), str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(EXPECTED_WIDTHS)
    for name, width in EXPECTED_WIDTHS.items():
        shot_width, height = png_size((tmp_path / name).read_bytes())
        assert shot_width == width, f"{name} is {shot_width} px wide: the page overflows"
        assert height >= 600, name
