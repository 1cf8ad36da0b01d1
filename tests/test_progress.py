"""Data preparation's progress: readable lines in a log file, not carriage-return redraws."""

import io

from ecomrec_tf import progress


def test_off_a_terminal_each_redraw_is_its_own_line(monkeypatch):
    monkeypatch.setattr(progress, "LOG_INTERVAL", 0.0)  # a line on every update
    log = io.StringIO()  # not a terminal, as a file or a pipe
    for _ in progress.progress_bar(range(5), desc="users", file=log, miniters=1, leave=False):
        pass
    text = log.getvalue()
    assert "\r" not in text and "\x1b" not in text
    lines = text.splitlines()
    assert len(lines) >= 2 and all(line.startswith("users:") for line in lines)
    assert "5/5" in lines[-1]  # the final state stays, even with leave=False


def test_off_a_terminal_lines_come_at_most_every_interval():
    log = io.StringIO()
    for _ in progress.progress_bar(range(10_000), desc="lines", file=log):
        pass
    assert len(log.getvalue().splitlines()) == 2  # the start and the end in a fast loop: no flood
