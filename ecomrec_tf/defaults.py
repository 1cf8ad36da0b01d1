"""Training defaults of every head, in one place for the Python API and the CLI (no TensorFlow import).

Chosen on the validation splits of real public data (`bench/real_data.py`, the README's "Real data"
section), never on test, and checked not to lower the generated shop's numbers.
"""

INTENT = {
    "epochs": 10,  # an upper bound: early stopping on validation macro-F1 ends most runs sooner
    "learning_rate": 1e-4,
    "batch_size": 32,
    "patience": 2,
    "class_weight": "balanced",
}
PURCHASE = {
    "epochs": 5,
    "learning_rate": 2e-3,
    "batch_size": 256,
    "patience": 2,  # on validation AUC
    "history_size": 10,
    "sequence_length": 64,
    "id_l2": 1.0,
    "catalog_negatives": 0,
}
REPLY = {
    "epochs": 3,
    "learning_rate": 1e-4,
    "batch_size": 32,
    "patience": 1,  # on validation MRR
    "sequence_length": 96,
    "train_top_layers": 3,
}
