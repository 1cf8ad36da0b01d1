"""Which encoder weights train: all, the top k transformer layers, or none."""

from __future__ import annotations

import keras_hub


def train_top_layers(backbone: keras_hub.models.BertBackbone, k: int | None) -> None:
    """Freezes the embeddings and all but the top `k` transformer layers; `None` trains everything.

    A `k` beyond the encoder's depth trains all its transformer layers (embeddings stay frozen).

    Freezing the lower layers keeps the pretrained lexical knowledge that lets a model understand
    phrasings it never saw in training; `k=0` freezes the whole encoder (only the head trains).
    """
    layers = [backbone.get_layer(f"transformer_layer_{i}") for i in range(backbone.num_layers)]
    if k is None:
        for layer in backbone.layers:
            # The CLS pooler is unused: heads mean-pool, as MiniLM was trained to.
            layer.trainable = layer.name != "pooled_dense"
        return
    if k < 0:
        raise ValueError(f"the number of top layers to train must be 0 or more, got {k}")
    for layer in backbone.layers:
        layer.trainable = False
    for layer in layers[max(len(layers) - k, 0) :]:
        layer.trainable = True


def enable_lora(backbone: keras_hub.models.BertBackbone, rank: int) -> None:
    """Trains rank-`rank` LoRA factors on the attention query and value projections, nothing else.

    keras-hub's `enable_lora` freezes the encoder and adds the factors; the query/value biases it
    leaves trainable are frozen here too, so the encoder's trainable weights are the LoRA factors alone.
    A backbone that already has LoRA (a reloaded model) keeps its factors.
    """
    if rank < 1:
        raise ValueError(f"the LoRA rank must be 1 or more, got {rank}")
    targets = set(backbone.default_lora_layer_names())
    lora_layers = [
        layer
        for layer in backbone._flatten_layers(include_self=False)
        if getattr(layer, "lora_enabled", False)
    ]
    if not lora_layers:
        backbone.enable_lora(rank)
        lora_layers = [
            layer
            for layer in backbone._flatten_layers(include_self=False)
            if layer.name in targets and getattr(layer, "lora_enabled", False)
        ]
    else:
        for layer in backbone._flatten_layers(include_self=False):
            layer.trainable = layer in lora_layers
    for layer in lora_layers:
        layer.trainable = True
        for variable in layer.trainable_variables:
            if "lora_kernel" not in variable.path:
                variable.trainable = False
