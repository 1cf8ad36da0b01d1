"""`ecomrec-tf`: train, evaluate, export and serve the models from the command line.

One module per command group (`data`, `train` with `tune` and `update`, `evaluate`, `ensemble`, `export` with
`check-export` and `predict`, `quickstart`); options more than one command takes are declared once in
`options`. Inputs are `--train`/`--valid`/`--test`/`--data`/`--items`/`--events`/`--model`; what a
command writes goes to `--out`, except training, whose run folder is `--runs-dir`/`--run-name`.
"""

from __future__ import annotations

import argparse
import sys

import ecomrec_tf  # noqa: F401  (quiet TensorFlow start-up before anything imports it)
from ecomrec_tf.cli import data, ensemble, evaluate, export, quickstart, train
from ecomrec_tf.cli.options import HelpFormatter
from ecomrec_tf.cli.quiet import filter_stderr
from ecomrec_tf.errors import ConfigError

GROUPS = (quickstart, data, train, evaluate, ensemble, export)  # in the order `--help` lists them


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ecomrec-tf", description=__doc__.split("\n")[0], formatter_class=HelpFormatter
    )
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    commands = parser.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Runs one command; as the `ecomrec-tf` program (no `argv`), with TensorFlow's start-up noise
    filtered from stderr (`cli.quiet`)."""
    args = build_parser().parse_args(argv)
    if argv is None:
        filter_stderr()
    from ecomrec_tf.data import DataError
    from ecomrec_tf.encoders import EncoderError
    from ecomrec_tf.export import ExportError

    try:
        args.func(args)
    except (ConfigError, DataError, EncoderError, ExportError, OSError) as error:
        if args.debug:
            raise
        print(f"ecomrec-tf: error: {one_line(error)}", file=sys.stderr)
        return 2
    return 0


def one_line(error: Exception) -> str:
    """An expected error as one line; file-system errors as `path: reason`."""
    if isinstance(error, OSError) and error.filename and not isinstance(error, FileNotFoundError):
        return f"{error.filename}: {error.strerror or error}"
    if isinstance(error, FileNotFoundError) and error.filename:
        return f"{error.filename}: no such file"
    return " ".join(str(error).split())
