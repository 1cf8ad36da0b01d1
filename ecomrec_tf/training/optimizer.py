"""AdamW with warm-up then cosine or linear decay, and layer-wise learning-rate decay: BERT fine-tuning."""

from __future__ import annotations

import re

import keras

EMBEDDING_LAYERS = ("token_embedding", "position_embedding", "segment_embedding", "embeddings_layer_norm")


@keras.saving.register_keras_serializable(package="ecomrec_tf")
class LayerwiseAdamW(keras.optimizers.AdamW):
    """AdamW whose learning rate shrinks by `layer_decay` per encoder layer, from the top down.

    The head (any variable outside the encoder) learns at the full rate, the top transformer layer
    at `layer_decay` times it, layer `i` (from 0 at the bottom) at `layer_decay ** (num_layers - i)`,
    and the embeddings at `layer_decay ** (num_layers + 1)`: lower layers, which hold general
    language knowledge, move least (Clark et al., ELECTRA). Encoder layers are recognised by the
    keras-hub variable paths `transformer_layer_<i>/...` and the embedding layer names.

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
        # On TensorFlow `variable` is the raw tf.Variable; its Keras variable carries the path.
        path = self._trainable_variables[self._get_variable_index(variable)].path
        multiplier = self.learning_rate_multiplier(path)
        if multiplier != 1.0:
            learning_rate = learning_rate * multiplier
        return super().update_step(gradient, variable, learning_rate)

    def get_config(self):
        return {
            **super().get_config(),
            "layer_decay": self.layer_decay,
            "num_layers": self.num_layers,
            "multipliers": self.multipliers,
        }


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
