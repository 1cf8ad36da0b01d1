"""AdamW with linear warm-up then cosine decay, the BERT fine-tuning default."""

from __future__ import annotations

import keras


def make_optimizer(
    learning_rate: float,
    total_steps: int,
    warmup_fraction: float = 0.1,
    weight_decay: float = 0.01,
    clipnorm: float | None = 1.0,
) -> keras.optimizers.AdamW:
    """AdamW whose learning rate warms up linearly, then decays by cosine to zero.

    LayerNorm scales/offsets and biases get no weight decay.

    Args:
        learning_rate: peak learning rate, reached after warm-up.
        total_steps: optimizer steps in the whole run.
        warmup_fraction: share of `total_steps` spent warming up.
        weight_decay: decoupled weight decay.
        clipnorm: clip each gradient to this norm; None for no clipping.
    """
    total_steps = max(int(total_steps), 1)
    warmup_steps = int(total_steps * warmup_fraction)
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if warmup_steps else learning_rate,
        decay_steps=max(total_steps - warmup_steps, 1),
        warmup_target=learning_rate if warmup_steps else None,
        warmup_steps=warmup_steps,
    )
    optimizer = keras.optimizers.AdamW(learning_rate=schedule, weight_decay=weight_decay, clipnorm=clipnorm)
    optimizer.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
    return optimizer
