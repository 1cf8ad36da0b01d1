"""Export to SavedModel for TF Serving."""

from ecomrec_tf.export.saved_model import (
    ExportError,
    export_saved_model,
    next_version,
    read_warmup_requests,
    versions,
    write_models_config,
)

__all__ = [
    "ExportError",
    "export_saved_model",
    "next_version",
    "read_warmup_requests",
    "versions",
    "write_models_config",
]
