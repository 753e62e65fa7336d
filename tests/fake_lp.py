"""A stand-in for CUPS' `lp`, put first on PATH: the picking run really runs a process.

It appends its arguments to a log, one call a line, and refuses printer `broken` the way lp
does (exit 1, "The printer or class does not exist."), so a test drives success or failure
through the printer name in the settings.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

BROKEN_PRINTER = "broken"


def install_lp(folder: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Put the stand-in `lp` under `folder` first on PATH; returns the log of its calls."""
    bin_dir, log = folder / "lp-bin", folder / "lp.log"
    bin_dir.mkdir(parents=True, exist_ok=True)
    lp = bin_dir / "lp"
    lp.write_text(
        "#!/bin/sh\n"
        f'echo "$@" >> "{log}"\n'
        f'[ "$2" != {BROKEN_PRINTER} ] || '
        '{ echo "lp: The printer or class does not exist." >&2; exit 1; }\n'
    )
    lp.chmod(lp.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return log


def sent_files(log: Path, printer: str) -> list[str]:
    """The files handed to `lp -d printer`, in call order (the file is lp's last argument)."""
    if not log.exists():
        return []
    calls = [line.split() for line in log.read_text().splitlines()]
    return [call[-1] for call in calls if call[:2] == ["-d", printer]]
