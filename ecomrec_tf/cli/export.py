"""`ecomrec-tf export`, `check-export` and `predict`: SavedModels for TF Serving, checked and used."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

from ecomrec_tf.cli.options import add, command, load_model
from ecomrec_tf.errors import ConfigError

TF_ONLY_SCRIPT = Path(__file__).parents[1] / "serving" / "tf_only.py"
MODELS_HELP = (
    "model.keras or its run folder; repeat as HEAD=PATH (intent=runs/i purchase=runs/p reply=runs/r) for "
    "one shop-assistant SavedModel with every head's signatures"
)


def export(
    model, base_dir: str, name: str, version: int | None, metadata: dict, keep: int | None = None
) -> Path:
    from ecomrec_tf.export import export_saved_model, write_models_config

    path = export_saved_model(model, Path(base_dir) / name, version=version, metadata=metadata, keep=keep)
    print(f"exported: {path} (with TF Serving warm-up requests)")
    print(f"TF Serving config: {write_models_config(base_dir)}")
    return path


def load_models(specs: list[str]):
    """One `PATH`: that model. Several `HEAD=PATH`: a `ShopAssistant` of them, the first head
    answering `serving_default`."""
    from ecomrec_tf.export import ExportError
    from ecomrec_tf.models import ShopAssistant

    if len(specs) == 1 and "=" not in specs[0]:
        return load_model(specs[0])
    heads = {}
    for spec in specs:
        head, sep, path = spec.partition("=")
        if not sep or not head or not path:
            raise ExportError(f"{spec!r}: with several models, name each head: HEAD=PATH")
        if head in heads:
            raise ExportError(f"{spec!r}: head {head!r} given twice")
        heads[head] = load_model(path)
    return ShopAssistant(heads)


def export_command(args) -> None:
    export(load_models(args.model), args.out, args.name, args.version, {"source": args.model}, args.keep)


def check_export(args) -> None:
    from ecomrec_tf.serving.check_export import check_export

    model = load_models(args.keras_model) if args.keras_model else None
    for line in check_export(args.model, model):
        print(f"ok  {line}")


def tf_only_predict(saved_model: Path, texts: list[str]) -> list[dict]:
    """Predictions from a SavedModel in a fresh process with only TensorFlow (and TF Text ops)."""
    result = subprocess.run(
        [sys.executable, str(TF_ONLY_SCRIPT), "predict", str(saved_model), *texts],
        capture_output=True,
        text=True,
        encoding="utf-8",
    )
    if result.returncode != 0:
        raise RuntimeError(f"loading {saved_model} in a fresh process failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])["outputs"]


def print_predictions(texts: list[str], rows: list[dict]) -> None:
    for text, row in zip(texts, rows):
        label = row.get("label")
        confidence = max(row["probabilities"]) if "probabilities" in row else None
        label = label.decode() if isinstance(label, bytes) else label
        print(f"  {label:<24} {confidence:6.3f}  {text!r}")


def resolve_saved_model(path: Path) -> Path | None:
    from ecomrec_tf.export import versions

    if (path / "saved_model.pb").is_file():
        return path
    published = versions(path)
    return path / str(published[-1]) if published else None


def predict(args) -> None:
    texts = args.text
    if not texts:
        if sys.stdin.isatty():
            raise ConfigError("no texts: give them as arguments, or pipe one per line (predict ... <file)")
        texts = [line.rstrip("\n") for line in sys.stdin]
        if not texts:
            raise ConfigError("no texts: the input on stdin is empty")
    path = Path(args.model)
    saved_model = resolve_saved_model(path) if path.is_dir() else None
    if saved_model is not None:
        import tensorflow as tf
        import tensorflow_text  # noqa: F401  (registers the tokenizer ops)

        serve = tf.saved_model.load(str(saved_model)).signatures["serving_default"]
        outputs = {k: v.numpy() for k, v in serve(text=tf.constant(texts)).items()}
        rows = [
            {"label": outputs["label"][i].decode(), "probabilities": outputs["probabilities"][i].tolist()}
            for i in range(len(texts))
        ]
    else:
        model = load_model(args.model)
        probabilities = model.predict(texts, verbose=0)["probabilities"]
        rows = [{"label": model.labels[int(p.argmax())], "probabilities": p.tolist()} for p in probabilities]
    if args.json:
        found = [
            {"text": t, "label": r["label"], "confidence": max(r["probabilities"])}
            for t, r in zip(texts, rows)
        ]
        print(json.dumps(found, ensure_ascii=False))
    else:
        print_predictions(texts, rows)


def serve(args) -> None:
    from ecomrec_tf.serving.dev_server import DevServer

    server = DevServer(args.model)
    rest = server.rest(args.host, args.rest_port)
    grpc_server, grpc_port = server.grpc(args.host, args.grpc_port)
    for name, found in server.exports.items():
        url = f"http://{args.host}:{rest.server_port}/v1/models/{name}"
        listed = ", ".join(map(str, sorted(found)))
        print(f"serving {name} (versions {listed}): REST {url}, gRPC {args.host}:{grpc_port}")
    print("a development server, for trying requests and clients: serve production traffic with TF Serving")
    sys.stdout.flush()
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        rest.shutdown()
        grpc_server.stop(None)


def register(commands) -> None:
    parser = command(
        commands, "export", "export a trained model as a SavedModel for TF Serving", export_command
    )
    add(parser, "model", model={"action": "append", "help": MODELS_HELP})
    parser.add_argument("--name", default="intent", help="the model's name in TF Serving: OUT/NAME/VERSION")
    add(parser, "out", out={"required": False, "default": "saved_models", "help": "TF Serving's base folder"})
    parser.add_argument(
        "--version", type=int, default=None, help="the version number; default: the next free"
    )
    parser.add_argument("--keep", type=int, default=None, help="then delete all but the newest N versions")

    what = "check a SavedModel as TF Serving loads it (ops, session loader, warm-up, outputs)"
    parser = command(commands, "check-export", what, check_export)
    add(
        parser,
        "model",
        model={"help": "a SavedModel version folder, or its model folder (the newest version)"},
    )
    parser.add_argument(
        "--keras-model",
        action="append",
        default=None,
        help="the model.keras it came from (repeat HEAD=PATH as for export): compare their outputs",
    )

    parser = command(
        commands, "serve", "a development server with TF Serving's REST and gRPC APIs over exports", serve
    )
    add(
        parser,
        "model",
        model={"help": "a SavedModel version folder, a model folder, or a base folder (saved_models)"},
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="the address to listen on (0.0.0.0: every interface)"
    )
    parser.add_argument(
        "--rest-port", type=int, default=8501, help="REST port, as TF Serving's (0: a free one)"
    )
    parser.add_argument(
        "--grpc-port", type=int, default=8500, help="gRPC port, as TF Serving's (0: a free one)"
    )

    parser = command(commands, "predict", "predict intents of raw texts (arguments or stdin lines)", predict)
    add(
        parser,
        "model",
        model={"help": "SavedModel version folder, its model folder (newest version), or model.keras"},
    )
    add(parser, "json")
    parser.add_argument("text", nargs="*", help="texts to classify; none: one per line from stdin")
