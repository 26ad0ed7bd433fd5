"""The test bank of tests/campaigns is put back after each module that uses it, also in a
module of another package that imports the fixture: the packages run after it (the browser
journeys after tests/billing in a full run) get the bank that was in use before."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: Two packages as pytest collects tests/billing and tests/browser: the first imports the
#: fixture and asks for it, the second runs after it and must find the demo bank.
BEFORE = """
import pytest

from campaigns import content
from tests.campaigns.conftest import BANK, test_bank  # noqa: F401 - the fixture

pytestmark = pytest.mark.usefixtures("test_bank")


def test_runs_on_the_test_bank() -> None:
    assert content.bank_dir() == BANK.resolve()
"""

AFTER = """
from campaigns import content


def test_finds_the_demo_bank_again() -> None:
    assert content.bank_dir() == content.DEMO_BANK
"""


def test_a_module_on_the_test_bank_leaves_the_demo_bank_to_the_next_package(
    tmp_path: Path,
) -> None:
    for package, module in (("a_billing", BEFORE), ("b_browser", AFTER)):
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
        (tmp_path / package / f"test_{package}.py").write_text(module)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    inner = ("-q", "-p", "no:cacheprovider", "-c", str(tmp_path / "pytest.ini"), str(tmp_path))
    done = subprocess.run(
        [sys.executable, "-m", "pytest", *inner, "--rootdir", str(tmp_path)],
        cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "2 passed" in done.stdout
