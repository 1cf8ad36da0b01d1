"""AdamW with warm-up then cosine or linear decay, and layer-wise learning-rate decay: BERT fine-tuning."""

from __future__ import annotations

import re

import keras
import tensorflow as tf

EMBEDDING_LAYERS = ("token_embedding", "position_embedding", "segment_embedding", "embeddings_layer_norm")


@keras.saving.register_keras_serializable(package="ecomrec_tf")
class LayerwiseAdamW(keras.optimizers.AdamW):
    """AdamW whose learning rate shrinks by `layer_decay` per encoder layer, from the top down.

    The head (any variable outside the encoder) learns at the full rate, the top transformer layer
    at `layer_decay` times it, layer `i` (from 0 at the bottom) at `layer_decay ** (num_layers - i)`,
    and the embeddings at `layer_decay ** (num_layers + 1)`: lower layers, which hold general
    language knowledge, move least (Clark et al., ELECTRA).

    Each step runs in fused kernels (Adam in one `ResourceApplyAdam`, the decoupled decay in one pass)
    and keeps sparse gradients sparse: the word embedding's rows a batch did not look up keep their
    values and moments (lazy Adam), instead of a pass over the whole table. Dense weights move exactly
    as with Keras's AdamW; gradient accumulation and AMSGrad run Keras's own update.

    Encoder layers are recognised by the keras-hub variable paths `transformer_layer_<i>/...` and the
    embedding layer names.

    Args:
        layer_decay: multiplier per layer; 1 is plain AdamW.
        num_layers: transformer layers in the encoder.
        multipliers: learning-rate factors for the variables of named top-level layers, e.g.
            `{"reply_decoder": 10.0}` for a decoder trained from scratch beside a pretrained encoder.
        **kwargs: `keras.optimizers.AdamW` arguments.
    """

    def __init__(
        self, layer_decay: float = 1.0, num_layers: int = 12, multipliers: dict | None = None, **kwargs
    ):
        super().__init__(**kwargs)
        if not 0 < layer_decay <= 1:
            raise ValueError(f"layer_decay must be in (0, 1], got {layer_decay}")
        self.layer_decay = layer_decay
        self.num_layers = num_layers
        self.multipliers = dict(multipliers or {})
        self._fused = False  # whether this step runs `_update` (set each step)

    def learning_rate_multiplier(self, path: str) -> float:
        """The factor on the learning rate of the variable at `path`."""
        if path.split("/")[0] in self.multipliers:
            return float(self.multipliers[path.split("/")[0]])
        match = re.search(r"(?:^|/)transformer_layer_(\d+)/", path)
        if match:
            depth = int(match.group(1)) + 1
        elif path.split("/")[0] in EMBEDDING_LAYERS:
            depth = 0
        else:
            return 1.0
        return self.layer_decay ** (self.num_layers + 1 - depth)

    def update_step(self, gradient, variable, learning_rate):
        # Keras's update, for gradient accumulation and AMSGrad; `_update` is the fused path.
        # On TensorFlow the update sees the raw tf.Variable; its Keras variable carries the path.
        path = self._trainable_variables[self._get_variable_index(variable)].path
        multiplier = self.learning_rate_multiplier(path)
        if multiplier != 1.0:
            learning_rate = learning_rate * multiplier
        return super().update_step(gradient, variable, learning_rate)

    def _step_constants(self) -> dict:
        """What every variable's update shares in a step, computed once: Adam's beta powers and
        the weight-decay rate."""
        step = tf.cast(self.iterations + 1, tf.float32)
        decay = None
        if self.weight_decay is not None:
            decay = tf.cast(self.learning_rate, tf.float32) * self.weight_decay
        return {
            "beta_1_power": tf.pow(self.beta_1, step),
            "beta_2_power": tf.pow(self.beta_2, step),
            "decay": decay,
        }

    def _distributed_tf_update_step(self, distribution, grads_and_vars, learning_rate):
        if not self._fused:
            return super()._distributed_tf_update_step(distribution, grads_and_vars, learning_rate)
        constants = self._step_constants()
        for gradient, variable in grads_and_vars:
            args = (gradient, learning_rate, constants)
            distribution.extended.update(variable, self._update, args=args, group=False)

    def _update(self, variable, gradient, learning_rate, constants):
        """One variable's AdamW step: decoupled weight decay then Adam, each one fused kernel for a
        dense gradient (one pass over the weights instead of Keras's ten ops), or on the looked-up
        rows only for a sparse one (`_lazy_update`)."""
        index = self._get_variable_index(variable)
        multiplier = self.learning_rate_multiplier(self._trainable_variables[index].path)
        learning_rate = learning_rate * multiplier if multiplier != 1.0 else learning_rate
        dtype = variable.dtype
        m, v = self._momentums[index].value, self._velocities[index].value
        decay = constants["decay"] if self._use_weight_decay(variable) else None

        def cast(x):
            return tf.cast(x, dtype)

        if isinstance(gradient, tf.IndexedSlices):
            return self._lazy_update(gradient, variable, m, v, learning_rate, constants, decay)
        if decay is not None:  # one pass: the product's buffer becomes the variable's
            variable.assign(variable * (1 - cast(decay)))
        return tf.raw_ops.ResourceApplyAdam(
            var=variable.handle, m=m.handle, v=v.handle, beta1_power=cast(constants["beta_1_power"]),
            beta2_power=cast(constants["beta_2_power"]), lr=cast(learning_rate), beta1=cast(self.beta_1),
            beta2=cast(self.beta_2), epsilon=cast(self.epsilon), grad=cast(gradient),
        )  # fmt: skip

    def _lazy_update(self, gradient, variable, m, v, learning_rate, constants, decay):
        """Adam and weight decay on the rows a sparse gradient touches (an embedding's looked-up
        tokens), as TF Addons' LazyAdam: the other rows and their moments stay as they are, instead
        of a pass over every row of a 30k-word table each step."""
        rows, values = gradient.indices, tf.cast(gradient.values, variable.dtype)
        m_rows = self.beta_1 * tf.gather(m, rows) + (1 - self.beta_1) * values
        v_rows = self.beta_2 * tf.gather(v, rows) + (1 - self.beta_2) * tf.square(values)
        alpha = learning_rate * tf.sqrt(1 - constants["beta_2_power"]) / (1 - constants["beta_1_power"])
        delta = tf.cast(alpha, variable.dtype) * m_rows / (tf.sqrt(v_rows) + self.epsilon)
        if decay is not None:  # decoupled weight decay, on these rows only
            delta += tf.gather(variable, rows) * tf.cast(decay, variable.dtype)
        m.scatter_update(tf.IndexedSlices(m_rows, rows))
        v.scatter_update(tf.IndexedSlices(v_rows, rows))
        variable.scatter_sub(tf.IndexedSlices(delta, rows))

    def _backend_apply_gradients(self, grads, trainable_variables):
        """Keras's apply, with sparse gradients kept sparse (their repeated rows summed, clipped by
        the global norm with the dense ones) and the weight decay done in `_update`."""
        # Gradient accumulators are dense, AMSGrad has a third moment: Keras's path as it is.
        self._fused = not (self.gradient_accumulation_steps or self.amsgrad)
        if self._fused:
            grads = [unique_rows(g) if isinstance(g, tf.IndexedSlices) else g for g in grads]
        return super()._backend_apply_gradients(grads, trainable_variables)

    def _apply_weight_decay(self, variables):
        if not self._fused:  # the fused update decays in `_update`
            return super()._apply_weight_decay(variables)

    def _clip_gradients(self, grads):
        if not (self.global_clipnorm and self.global_clipnorm > 0):
            return super()._clip_gradients(grads)
        # Keras's `clip_by_global_norm`, without densifying sparse gradients.
        dense = [g.values if isinstance(g, tf.IndexedSlices) else g for g in grads if g is not None]
        norm = tf.sqrt(2 * tf.add_n([tf.nn.l2_loss(tf.cast(g, tf.float32)) for g in dense]))
        scale = self.global_clipnorm * tf.minimum(1.0 / norm, 1.0 / self.global_clipnorm)
        scale += norm - norm  # NaN for a NaN or infinite norm, as Keras's
        return [None if g is None else scaled(g, scale) for g in grads]

    def get_config(self):
        return {
            **super().get_config(),
            "layer_decay": self.layer_decay,
            "num_layers": self.num_layers,
            "multipliers": self.multipliers,
        }


def unique_rows(gradient: tf.IndexedSlices) -> tf.IndexedSlices:
    """A sparse gradient with each row once, its repeats summed (a token twice in a batch)."""
    rows, positions = tf.unique(gradient.indices)
    values = tf.math.unsorted_segment_sum(gradient.values, positions, tf.shape(rows)[0])
    return tf.IndexedSlices(values, rows, gradient.dense_shape)


def scaled(gradient, scale):
    """`gradient * scale`, dense or sparse, in the gradient's dtype."""
    if isinstance(gradient, tf.IndexedSlices):
        return tf.IndexedSlices(gradient.values * tf.cast(scale, gradient.values.dtype), gradient.indices,
                                gradient.dense_shape)  # fmt: skip
    return gradient * tf.cast(scale, gradient.dtype)


def make_optimizer(
    learning_rate: float,
    total_steps: int,
    warmup_fraction: float = 0.1,
    decay: str = "cosine",
    weight_decay: float = 0.01,
    global_clipnorm: float | None = 1.0,
    layer_decay: float = 1.0,
    num_layers: int = 12,
    accumulation_steps: int | None = None,
    loss_scale: bool = False,
    multipliers: dict[str, float] | None = None,
) -> keras.optimizers.Optimizer:
    """AdamW whose learning rate warms up linearly, then decays by cosine or linearly to zero.

    LayerNorm scales/offsets and biases get no weight decay.

    Args:
        learning_rate: peak learning rate, reached after warm-up.
        total_steps: optimizer updates in the whole run.
        warmup_fraction: share of `total_steps` spent warming up.
        decay: `"cosine"` or `"linear"`.
        weight_decay: decoupled weight decay.
        global_clipnorm: clip the gradients to this global norm; None for no clipping.
        layer_decay, num_layers: layer-wise learning-rate decay (see `LayerwiseAdamW`); 1 for none.
        accumulation_steps: for `model.fit`, update once every this many batches with their mean
            gradient (Keras's `gradient_accumulation_steps`). The `Trainer` takes its own
            `accumulation_steps` instead, which also works under a distribution strategy.
        loss_scale: wrap in a `LossScaleOptimizer`, for float16 mixed precision.
        multipliers: learning-rate factors by top-level layer name (see `LayerwiseAdamW`).
    """
    if decay not in ("cosine", "linear"):
        raise ValueError(f"decay must be 'cosine' or 'linear', got {decay!r}")
    if int(total_steps) < 1:
        raise ValueError(
            f"total_steps must be >= 1, got {total_steps} (a dataset of unknown length gives "
            "cardinality -2: pass the number of steps instead)"
        )
    total_steps = int(total_steps)
    warmup_steps = int(total_steps * warmup_fraction)
    decay_steps = max(total_steps - warmup_steps, 1)
    if decay == "cosine":
        schedule = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=0.0 if warmup_steps else learning_rate,
            decay_steps=decay_steps,
            warmup_target=learning_rate if warmup_steps else None,
            warmup_steps=warmup_steps,
        )
    else:
        schedule = LinearWarmupDecay(learning_rate, warmup_steps, decay_steps)
    optimizer = LayerwiseAdamW(
        layer_decay=layer_decay,
        num_layers=num_layers,
        multipliers=multipliers,
        learning_rate=schedule,
        weight_decay=weight_decay,
        global_clipnorm=global_clipnorm,
        gradient_accumulation_steps=accumulation_steps
        if accumulation_steps and accumulation_steps > 1
        else None,
    )
    optimizer.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
    return keras.optimizers.LossScaleOptimizer(optimizer) if loss_scale else optimizer


@keras.saving.register_keras_serializable(package="ecomrec_tf")
class LinearWarmupDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from 0 to `peak` over `warmup_steps`, then linear decay to 0 over `decay_steps`."""

    def __init__(self, peak: float, warmup_steps: int, decay_steps: int):
        self.peak, self.warmup_steps, self.decay_steps = peak, warmup_steps, decay_steps

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        warm = step / max(self.warmup_steps, 1)
        down = 1.0 - (step - self.warmup_steps) / self.decay_steps
        factor = keras.ops.where(step < self.warmup_steps, warm, keras.ops.maximum(down, 0.0))
        return self.peak * factor

    def get_config(self):
        return {"peak": self.peak, "warmup_steps": self.warmup_steps, "decay_steps": self.decay_steps}
