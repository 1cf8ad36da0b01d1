import numpy as np
import pytest
from sklearn.metrics import f1_score

from ecomrec_tf.training.metrics import MacroF1


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_macro_f1_equals_scikit_learn_over_batches(seed):
    rng = np.random.default_rng(seed)
    labels = rng.choice([0, 1, 3], size=200)  # class 2 never occurs; class 4 is never a label
    probabilities = rng.dirichlet(np.ones(5), size=200)
    probabilities[:20, 4] = 5.0  # ... but is predicted sometimes
    metric = MacroF1(5)
    for start in range(0, 200, 64):
        metric.update_state(labels[start : start + 64], probabilities[start : start + 64])
    expected = f1_score(labels, probabilities.argmax(axis=1), average="macro")
    assert float(metric.result()) == pytest.approx(expected, abs=1e-6)
    metric.reset_state()
    assert float(metric.result()) == 0.0


def test_sample_weights_count_examples_that_many_times():
    labels, probabilities = np.array([0, 1, 1]), np.eye(2)[[0, 0, 1]]
    weighted = MacroF1(2)
    weighted.update_state(labels, probabilities, sample_weight=np.array([1.0, 3.0, 1.0]))
    repeated = f1_score([0, 1, 1, 1, 1], [0, 0, 0, 0, 1], average="macro")
    assert float(weighted.result()) == pytest.approx(repeated, abs=1e-6)
