"""Keeps TensorFlow's C++ start-up chatter off the terminal of `ecomrec-tf` commands.

TensorFlow 2.21 logs through absl before absl is initialised, so `TF_CPP_MIN_LOG_LEVEL` does not silence
it: every command would open with lines such as `I0000 ... oneDNN custom operations are on` and
`E0000 ... failed call to cuInit`, which read as failures on every CPU machine. The command's stderr
(file descriptor 2, where C++ writes) goes through a pipe; a thread forwards everything except absl's
info and warning lines and the two known harmless errors. `ECOMREC_TF_VERBOSE=1` turns this off.
"""

from __future__ import annotations

import atexit
import os
import re
import sys
import threading

NOISE = re.compile(
    rb"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    rb"|[IW]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ \S+:\d+\] .*"
    rb"|E\d{4} \d\d:\d\d:\d+\.\d+ +\d+ \S+:\d+\] .*(failed call to cuInit|oneDNN supports DT_INT64).*)\r?$"
)


def drop_noise(chunk: bytes) -> bytes:
    """`chunk` without its lines that are TensorFlow start-up noise (`NOISE`)."""
    return b"".join(line for line in chunk.splitlines(keepends=True) if not NOISE.match(line.rstrip(b"\n")))


def filter_stderr() -> None:
    """Routes file descriptor 2 through `drop_noise` for the rest of the process."""
    if os.environ.get("ECOMREC_TF_VERBOSE") or getattr(filter_stderr, "installed", False):
        return
    filter_stderr.installed = True
    sys.stderr.flush()
    original = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)

    def forward():
        while chunk := os.read(read_end, 65536):
            kept = drop_noise(chunk)
            if kept:
                os.write(original, kept)

    thread = threading.Thread(target=forward, name="stderr-filter", daemon=True)
    thread.start()

    def restore():
        sys.stderr.flush()
        os.dup2(original, 2)  # closes the pipe's last write end: the thread reads to the end and stops
        thread.join(timeout=5)

    atexit.register(restore)
