"""Long jobs draw a progress bar for a person at a terminal, and stay quiet otherwise."""

import fcntl
import os
import struct
import sys
import termios

from crm.progress import progress


def test_a_terminal_sees_a_progress_bar(monkeypatch):
    primary, secondary = os.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    with open(secondary, "w") as terminal:
        monkeypatch.setattr(sys, "stderr", terminal)
        assert list(progress(range(3), total=3, desc="penalties")) == [0, 1, 2]
        terminal.flush()
        drawn = os.read(primary, 4096).decode()
    os.close(primary)

    assert "penalties:" in drawn and "/3 [" in drawn


def test_a_pipe_or_celery_log_gets_nothing(monkeypatch, tmp_path):
    with open(tmp_path / "worker.log", "w") as log:
        monkeypatch.setattr(sys, "stderr", log)
        assert list(progress(range(3), desc="penalties")) == [0, 1, 2]

    assert (tmp_path / "worker.log").read_text() == ""
