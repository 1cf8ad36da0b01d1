import keras
import numpy as np
import pytest
import tensorflow as tf

from ecomrec_tf.compat import core_slice_update


def traced_ops(function, *args) -> set[str]:
    return {node.type for node in tf.function(function).get_concrete_function(*args).graph.get_operations()}


@pytest.mark.parametrize(
    ("shape", "start", "update_shape"),
    [((2, 6), (0, 3), (2, 1)), ((2, 5, 4, 3), (0, 4, 0, 0), (2, 1, 4, 3)), ((3,), (0,), (3,))],
)
def test_core_slice_update_equals_keras_and_leaves_no_xla_op(shape, start, update_shape):
    inputs = np.random.default_rng(0).normal(size=shape).astype("float32")
    updates = np.ones(update_shape, "float32")
    index = tf.constant(start[1] if len(start) > 1 else start[0])
    starts = (start[0], index, *start[2:]) if len(start) > 1 else (index,)

    def update(x, u):
        return keras.ops.slice_update(x, starts, u)

    expected = update(inputs, updates)
    assert "XlaDynamicUpdateSlice" in traced_ops(update, inputs, updates)
    with core_slice_update():
        np.testing.assert_array_equal(update(inputs, updates), expected)
        ops = traced_ops(update, inputs, updates)
    assert "XlaDynamicUpdateSlice" not in ops and "TensorStridedSliceUpdate" in ops
    # Keras's own implementation is back after the block.
    assert "XlaDynamicUpdateSlice" in traced_ops(update, inputs, updates)
