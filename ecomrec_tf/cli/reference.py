"""The CLI reference (`docs/cli.md`), generated from the parser so it cannot drift from the commands.

python -m ecomrec_tf.cli.reference > docs/cli.md
"""

from __future__ import annotations

import argparse
import os

from ecomrec_tf.cli import build_parser


def _commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*path, name), sub
                yield from _commands(sub, (*path, name))


def reference() -> str:
    """Markdown: every command's description and its `--help`, in the order `ecomrec-tf --help` lists them."""
    columns = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "110"  # a fixed width: the same text on every terminal
    try:
        parts = [
            "# `ecomrec-tf` command reference",
            "",
            "Generated from the parser (`python -m ecomrec_tf.cli.reference > docs/cli.md`);",
            "`tests/test_cli.py` fails when it is out of date. Every option shows its default.",
            "",
            "```text",
            build_parser().format_help().rstrip(),
            "```",
        ]
        for path, parser in _commands(build_parser()):
            title = f"## `ecomrec-tf {' '.join(path)}`"
            parts += ["", title, "", "```text", parser.format_help().rstrip(), "```"]
    finally:
        if columns is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = columns
    return "\n".join(parts) + "\n"


if __name__ == "__main__":
    print(reference(), end="")
