"""Checks an export as TF Serving will load it: its op set, the session-based loader, the warm-up requests,
and the Keras model's outputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

from ecomrec_tf.export.saved_model import ExportError, read_warmup_requests, versions

OPS_FILE = Path(__file__).with_name("tf_serving_ops.json")


class ExportCheckError(ExportError):
    """An export that TF Serving would not load or answer as the Keras model does."""


def version_dir_of(path: str | Path) -> Path:
    """A version folder as given, or the newest published version of a model folder."""
    path = Path(path)
    if (path / "saved_model.pb").is_file():
        return path
    if versions(path):
        return path / str(versions(path)[-1])
    raise ExportCheckError(f"{path}: neither a SavedModel version folder nor a model folder with versions")


def graph_ops(version_dir: str | Path) -> set[str]:
    """Every op type in the SavedModel's graphs and functions (calls of its own functions left out)."""
    saved_model = saved_model_pb2.SavedModel.FromString((Path(version_dir) / "saved_model.pb").read_bytes())
    ops, functions = set(), set()
    for meta_graph in saved_model.meta_graphs:
        library = meta_graph.graph_def.library
        functions |= {function.signature.name for function in library.function}
        ops |= {node.op for node in meta_graph.graph_def.node}
        for function in library.function:
            ops |= {node.op for node in function.node_def}
    return ops - functions


def unsupported_ops(ops: set[str]) -> list[str]:
    """The `ops` (see `graph_ops`) the targeted TF Serving lacks: neither TensorFlow core (`tf.raw_ops`)
    nor the TF Text ops it bundles (`tf_serving_ops.json`)."""
    shipped = json.loads(OPS_FILE.read_text())
    return sorted(ops - set(dir(tf.raw_ops)) - set(shipped["tf_text_ops"]))


def _session_run(version_dir: Path, requests: list) -> set[str]:
    """Runs every request in TF1's session-based loader, the way TF Serving's SavedModelBundle does;
    returns the names of the signatures it serves."""
    import tensorflow_text  # noqa: F401  (registers the TF Text ops, as TF Serving links them)

    # Grappler's rewrites (TF Serving runs them) change speed, not which kernels must exist; without
    # them, and with every signature in one run, the check takes a fifth of the time.
    config = tf.compat.v1.ConfigProto()
    config.graph_options.rewrite_options.disable_meta_optimizer = True
    with tf.Graph().as_default(), tf.compat.v1.Session(config=config) as session:
        meta_graph = tf.compat.v1.saved_model.loader.load(session, ["serve"], str(version_dir))
        runs = []
        for name, inputs in requests:
            signature = meta_graph.signature_def[name]
            feed = {signature.inputs[key].name: value for key, value in inputs.items()}
            runs.append((name, feed, {key: info.name for key, info in signature.outputs.items()}))
        try:
            session.run([fetch for *_, fetch in runs], {k: v for _, feed, _ in runs for k, v in feed.items()})
        except tf.errors.OpError:
            for name, feed, fetch in runs:  # name the signature that fails
                try:
                    session.run(fetch, feed_dict=feed)
                except tf.errors.OpError as error:
                    message = f"signature {name!r} failed in the session-based loader: {error.message}"
                    raise ExportCheckError(f"{version_dir}: {message}") from None
            raise
        return {name for name in meta_graph.signature_def if not name.startswith("__")}  # not init ops


def _assert_same(served: dict, expected: dict, signature: str, atol: float) -> None:
    for key, value in expected.items():
        got, want = np.asarray(served[key]), np.asarray(value)
        same = np.array_equal(got, want) if want.dtype.kind in "OSUb" else np.allclose(got, want, atol=atol)
        if not same:
            raise ExportCheckError(f"signature {signature!r}: output {key!r} differs from the Keras model's")


def check_export(path: str | Path, model=None, atol: float = 1e-4) -> list[str]:
    """Checks a SavedModel version (or a model folder's newest version) for TF Serving.

    (a) it loads in the session-based loader and (c) every warm-up request runs there, on every
    signature; (b) every op is in TensorFlow core or in the TF Text ops the targeted TF Serving
    bundles; (d) with `model` (the Keras model it was exported from), every signature's outputs on
    the warm-up inputs equal the model's.

    Returns:
        One line per passed check.

    Raises:
        ExportCheckError: naming the failed check (the ops, the signature, the output).
    """
    version_dir = version_dir_of(path)
    target = json.loads(OPS_FILE.read_text())["target"]
    report = []
    ops = graph_ops(version_dir)
    missing = unsupported_ops(ops)
    if missing:
        raise ExportCheckError(f"{version_dir}: ops not in {target}: {', '.join(missing)}")
    report.append(f"ops: all {len(ops)} op types are in {target}")
    requests = read_warmup_requests(version_dir)
    try:
        served = _session_run(version_dir, requests)
    except (tf.errors.OpError, KeyError, ValueError) as error:
        raise ExportCheckError(f"{version_dir}: the session-based loader failed: {error}") from None
    if {name for name, _ in requests} != served:
        raise ExportCheckError(f"{version_dir}: warm-up requests do not cover every signature")
    report.append(f"session-based load: {len(requests)} signatures ran their warm-up requests")
    if model is not None:
        loaded = tf.saved_model.load(str(version_dir))
        signatures = model.serving_signatures()
        for name, inputs in requests:
            function, input_signature = signatures[name]
            expected = function(*[tf.constant(inputs[spec.name]) for spec in input_signature])
            served = loaded.signatures[name](**{key: tf.constant(value) for key, value in inputs.items()})
            _assert_same(served, expected, name, atol)
        report.append(f"outputs: every signature equals the Keras model's (atol {atol})")
    return report
