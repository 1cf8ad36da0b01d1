"""Progress bars for data preparation: tqdm on a terminal, plain lines in a log file.

tqdm redraws its bar with carriage returns, which a log file keeps as one ever-growing line. Off a terminal
`progress_bar` gives tqdm a writer that turns each redraw into its own line, and redraws at most every
`LOG_INTERVAL` seconds, so a log holds a few readable lines ("users: 40%|...| 800/2000 [00:12<00:18]").
"""

import sys

from tqdm import tqdm

LOG_INTERVAL = 30.0  # seconds between lines when the output is not a terminal


class _Lines:
    """A file-like stream: each tqdm redraw ("\\r" + bar) becomes one line of `stream`."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, text: str) -> None:
        text = text.replace("\r", "").replace("\x1b[A", "").strip()
        if text:
            self.stream.write(text + "\n")

    def flush(self) -> None:
        self.stream.flush()


def progress_bar(iterable=None, **kwargs) -> tqdm:
    """`tqdm(iterable, **kwargs)` on stderr, as plain lines every `LOG_INTERVAL` s when stderr is not a
    terminal (the bar's last state is always written when it closes)."""
    stream = kwargs.pop("file", None) or sys.stderr
    if not (hasattr(stream, "isatty") and stream.isatty()):
        kwargs |= {"file": _Lines(stream), "mininterval": max(kwargs.get("mininterval", 0), LOG_INTERVAL)}
        kwargs |= {"ascii": True, "leave": True}
    return tqdm(iterable, **kwargs)
