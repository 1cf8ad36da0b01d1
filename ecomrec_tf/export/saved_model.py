"""One export path for every model: TF Serving's versioned SavedModel layout, published atomically."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import keras

import ecomrec_tf

METADATA_FILE = "assets.extra/ecomrec_tf.json"


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
    model: keras.Model, model_dir: str | Path, version: int | None = None, metadata: dict | None = None
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

    Returns:
        The published version folder.

    Raises:
        ExportError: if the version exists already (versions are never overwritten).
    """
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    version = next_version(model_dir) if version is None else int(version)
    if version < 1:
        raise ExportError(f"version must be a positive integer, got {version}")
    target = model_dir / str(version)
    if target.exists():
        raise ExportError(
            f"{target} exists; versions are never overwritten (published: {versions(model_dir)})"
        )

    signatures = model.serving_signatures()
    if "serving_default" not in signatures:
        raise ExportError(f"{type(model).__name__}.serving_signatures() has no 'serving_default'")
    archive = keras.export.ExportArchive()
    archive.track(model)
    for name, (function, input_signature) in signatures.items():
        archive.add_endpoint(name, function, input_signature=input_signature)

    staging = Path(tempfile.mkdtemp(prefix=f".{version}-tmp-", dir=model_dir))
    try:
        archive.write_out(str(staging), verbose=False)
        extra = staging / METADATA_FILE
        extra.parent.mkdir(exist_ok=True)
        facts = {
            "model_class": type(model).__name__,
            "ecomrec_tf_version": ecomrec_tf.__version__,
            "signatures": sorted(signatures),
            **(metadata or {}),
        }
        extra.write_text(json.dumps(facts, indent=2, ensure_ascii=False), encoding="utf-8")
        os.chmod(staging, 0o755)
        if target.exists():
            raise ExportError(f"{target} was published by someone else while exporting")
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
