"""One export path for every model: TF Serving's versioned SavedModel layout, published atomically."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import socket
import tempfile
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

import ecomrec_tf

METADATA_FILE = "assets.extra/ecomrec_tf.json"
WARMUP_FILE = "assets.extra/tf_serving_warmup_requests"
MODELS_CONFIG = "models.config"
# Example values for warm-up requests, by dtype: a typical shop text for strings, zeros otherwise.
WARMUP_TEXT = "[customer] where is my order #1234567"


class ExportError(RuntimeError):
    """An export that would overwrite or could not publish a version."""


def versions(model_dir: str | Path) -> list[int]:
    """The published integer versions under `model_dir` (TF Serving ignores everything else)."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        return []
    return sorted(int(p.name) for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit())


def next_version(model_dir: str | Path) -> int:
    """One more than the highest published version, or 1."""
    return max(versions(model_dir), default=0) + 1


def export_saved_model(
    model: keras.Model,
    model_dir: str | Path,
    version: int | None = None,
    metadata: dict | None = None,
    keep: int | None = None,
) -> Path:
    """Exports `model` to `model_dir/<version>/` for TF Serving.

    The model supplies its signatures through `model.serving_signatures()`: a dict of
    `name -> (function, input_signature)`; `serving_default` must be one of them. The SavedModel
    is written to a hidden temporary folder beside the target and renamed into place, so TF Serving,
    which polls `model_dir`, never sees a half-written version.

    Args:
        model: a model with `serving_signatures()`, e.g. `IntentModel`.
        model_dir: the model's base path, e.g. `saved_models/intent`.
        version: integer version; the next free one when None.
        metadata: extra JSON-serialisable facts, written to `assets.extra/ecomrec_tf.json`.
        keep: after publishing, delete all but the newest `keep` versions (None keeps every one).

    Returns:
        The published version folder.

    Also writes `assets.extra/tf_serving_warmup_requests`: one `PredictionLog` per signature, which
    TF Serving replays before it answers, so the first live request does not pay for tracing.

    Raises:
        ExportError: if the version exists already (versions are never overwritten).
    """
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(model_dir)
    chosen = version is not None
    version = next_version(model_dir) if version is None else int(version)
    if version < 1:
        raise ExportError(f"version must be a positive integer, got {version}")
    if keep is not None and keep < 1:
        raise ExportError(f"keep must be at least 1, got {keep}")
    if chosen and (model_dir / str(version)).exists():
        raise ExportError(
            f"{model_dir / str(version)} exists; versions are never overwritten "
            f"(published: {versions(model_dir)})"
        )

    signatures = model.serving_signatures()
    if "serving_default" not in signatures:
        raise ExportError(f"{type(model).__name__}.serving_signatures() has no 'serving_default'")
    archive = keras.export.ExportArchive()
    archive.track(model)
    # `track` lists the Keras variable wrappers and the endpoints capture the tf.Variables inside them:
    # two objects per weight, so Keras 3.15 writes every weight twice and every loader, TF Serving
    # included, restores it twice (keras-team/keras#23553). Listing the tf.Variables stores each once.
    for collection in ("variables", "trainable_variables", "non_trainable_variables"):
        unique = {id(v): v for v in getattr(model, collection)}.values()
        archive.add_variable_collection(collection, [getattr(v, "value", v) for v in unique])
    for name, (function, input_signature) in signatures.items():
        archive.add_endpoint(name, _checking_rows(function, input_signature), input_signature=input_signature)

    staging = Path(tempfile.mkdtemp(prefix=f"{STAGING}{socket.gethostname()}-{os.getpid()}-", dir=model_dir))
    try:
        with (
            _quiet_tensorflow_logger()
        ):  # tf.saved_model.save logs "INFO: Assets written to" the staging path
            _write_out(archive, staging)
        extra = staging / METADATA_FILE
        extra.parent.mkdir(exist_ok=True)
        facts = {
            "model_class": type(model).__name__,
            "ecomrec_tf_version": ecomrec_tf.__version__,
            "signatures": sorted(signatures),
            **(metadata or {}),
        }
        extra.write_text(json.dumps(facts, indent=2, ensure_ascii=False), encoding="utf-8")
        write_warmup_requests(staging / WARMUP_FILE, model_dir.name, signatures)
        os.chmod(staging, 0o755)
        target = _publish(staging, model_dir, version, chosen)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if keep is not None:
        for old in versions(model_dir)[:-keep]:
            shutil.rmtree(model_dir / str(old))
    return target


def _write_out(archive: keras.export.ExportArchive, path: Path) -> None:
    """`archive.write_out(path)`, tracing each endpoint once instead of twice.

    Keras 3.15's `write_out` traces every endpoint to list its variables, then `tf.saved_model.save`
    traces it again inside its save context (a different tracing context, so the first trace is not
    reused): half the export's time, most of it building the tokeniser's graph. Giving
    `tf.saved_model.save` the first traces, as the signatures and the endpoint attributes, saves the
    same graphs once.
    """
    archive._filter_and_track_resources()  # traces each endpoint and tracks the variables it reads
    signatures = {}
    for name in archive._endpoint_names:
        signatures[name] = archive._get_concrete_fn(name).get_concrete_function()
        # The endpoint attribute is saved as this trace, not traced again.
        setattr(archive._tf_trackable, name, signatures[name])
    tf.saved_model.save(archive._tf_trackable, str(path), signatures=signatures)


@contextlib.contextmanager
def _quiet_tensorflow_logger():
    logger = logging.getLogger("tensorflow")
    level = logger.level
    logger.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        logger.setLevel(level)


STAGING = ".export-tmp-"  # + host-pid-random: a version being written (TF Serving skips hidden folders)
STALE_SECONDS = 24 * 3600  # another machine's staging folder this old is a dead exporter's


def _publish(staging: Path, model_dir: Path, version: int, chosen: bool) -> Path:
    """Renames `staging` to `model_dir/<version>`, atomically. Renaming onto a published version
    fails, so of two exporters racing for one version one wins; the other takes the next free
    version, or, when the version was `chosen`, fails naming it."""
    while True:
        target = model_dir / str(version)
        try:
            if target.exists():
                raise FileExistsError(target)
            staging.rename(target)  # fails with ENOTEMPTY/EEXIST if someone published it meanwhile
            return target
        except OSError as error:
            if not target.exists():
                raise ExportError(f"{target}: could not publish ({error.strerror or error})") from None
            if chosen:
                raise ExportError(f"{target} was published by another export meanwhile") from None
            version = max(version, *versions(model_dir)) + 1


def remove_stale_staging(model_dir: str | Path) -> list[Path]:
    """Deletes the staging folders of exports that died: this machine's whose process is gone,
    other machines' older than `STALE_SECONDS`. Returns what it deleted."""
    removed = []
    for folder in Path(model_dir).glob(f"{STAGING}*"):
        host, _, rest = folder.name[len(STAGING) :].rpartition("-")[0].rpartition("-")
        pid = int(rest) if rest.isdigit() else None
        if host == socket.gethostname() and pid is not None:
            stale = not _alive(pid)
        else:
            stale = time.time() - folder.stat().st_mtime > STALE_SECONDS
        if stale:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, another user's
    return True


def _checking_rows(function, input_signature):
    """`function`, first checking at run time that each input has the rank its spec declares.

    TF Serving feeds a request's tensor to the signature's placeholder without checking its shape,
    and the models flatten text batches, so a `[batch, 2]` text input would give answers that no
    longer match the request's rows. The check compares the number of values with the product of
    the declared dimensions' sizes, which Grappler cannot fold away as it could a rank: a request of
    the wrong rank gets INVALID_ARGUMENT naming the input.
    """

    def checked(*inputs):
        sizes, declared, messages = [], [], []
        for value, spec in zip(inputs, input_signature):
            rank = spec.shape.rank
            if rank is None:
                continue
            shape = tf.shape(value, out_type=tf.int64)
            sizes.append(tf.size(value, out_type=tf.int64))
            declared.append(tf.reduce_prod(shape[:rank]))  # 1 for a scalar
            messages.append(f"input {spec.name} must have shape {_shape_text(spec)} (rank {rank})")
        if messages:  # one assertion for all inputs (each costs graph-building time), naming the bad ones
            wrong = tf.not_equal(tf.stack(sizes), tf.stack(declared))
            check = tf.debugging.Assert(
                tf.logical_not(tf.reduce_any(wrong)), [tf.boolean_mask(tf.constant(messages), wrong)]
            )
            with tf.control_dependencies([check]):
                inputs = [tf.identity(value) for value in inputs]
        return function(*inputs)

    return checked


def _shape_text(spec: tf.TensorSpec) -> str:
    names = ["batch"] + ["n" if d is None else str(d) for d in spec.shape[1:]]
    return "[" + ", ".join(names[: spec.shape.rank]) + "]"


def example_value(spec: tf.TensorSpec) -> np.ndarray:
    """A batch-of-one value for a serving input (warm-up requests, benchmarks): unknown dimensions
    become 1 (batch) or 2; strings hold a typical shop message, numbers are zeros."""
    shape = [1] + [2 if d is None else d for d in spec.shape[1:]]
    if spec.dtype == tf.string:
        return np.full(shape, WARMUP_TEXT, dtype=object)
    return np.zeros(shape, dtype=spec.dtype.as_numpy_dtype)


def write_warmup_requests(path: str | Path, model_name: str, signatures: dict) -> int:
    """One TF Serving `PredictionLog` per signature, inputs from `example_value`; returns the count."""
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for name, (_, input_signature) in signatures.items():
            request = predict_pb2.PredictRequest(
                model_spec=model_pb2.ModelSpec(name=model_name, signature_name=name)
            )
            for spec in input_signature:
                request.inputs[spec.name].CopyFrom(tf.make_tensor_proto(example_value(spec)))
            log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())
    return len(signatures)


def read_warmup_requests(version_dir: str | Path) -> list[tuple[str, dict[str, np.ndarray]]]:
    """The export's warm-up requests as `(signature name, {input name: array})`."""
    from tensorflow_serving.apis import prediction_log_pb2

    requests = []
    for record in tf.data.TFRecordDataset(str(Path(version_dir) / WARMUP_FILE)):
        log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
        request = log.predict_log.request
        inputs = {key: tf.make_ndarray(value) for key, value in request.inputs.items()}
        requests.append((request.model_spec.signature_name, inputs))
    return requests


def write_models_config(base_dir: str | Path, mount: str = "/models", num_versions: int = 1) -> Path:
    """`base_dir/models.config` for `tensorflow_model_server --model_config_file`: every model folder
    under `base_dir` with a published version, at `mount/<name>` inside the server, serving its newest
    `num_versions` versions."""
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    base_dir = Path(base_dir)
    config = model_server_config_pb2.ModelServerConfig()
    for folder in sorted(p for p in base_dir.iterdir() if p.is_dir() and versions(p)):
        model = config.model_config_list.config.add()
        model.name, model.base_path, model.model_platform = (
            folder.name,
            f"{mount}/{folder.name}",
            "tensorflow",
        )
        model.model_version_policy.latest.num_versions = num_versions
    path = base_dir / MODELS_CONFIG
    path.write_text(text_format.MessageToString(config), encoding="utf-8")
    return path
