"""Several trained heads served as one SavedModel: the shop assistant."""

from __future__ import annotations

import keras


class ShopAssistant(keras.layers.Layer):
    """The intent, purchase and reply models (any of them) behind one TF Serving model.

    `serving_signatures()` merges the heads' signatures for `export.export_saved_model`: each
    head's named signatures keep their names (`purchase_probability`, `rank`, `embed_user`,
    `embed_item`, `reply`, `embed_context`, `embed_reply`, `generate`), a head whose `serving_default`
    has no other name is served under the head's name (`intent`), and `serving_default` is the
    `default` head's. A name two heads share is prefixed with the head's name (`<head>_<name>`).

    Heads trained on one encoder (a multi-task run) keep sharing it: the SavedModel stores each
    variable once.

    Args:
        heads: `{name: model}`, each model with `serving_signatures()`, e.g. `{"intent": IntentModel,
            "purchase": PurchaseModel, "reply": ReplyModel}`.
        default: the head answering `serving_default`; the first head when None.

    Example:
        >>> assistant = ShopAssistant({"intent": intent_model, "reply": reply_model})
        >>> export_saved_model(assistant, "saved_models/shop_assistant")  # doctest: +SKIP
    """

    def __init__(self, heads: dict[str, keras.Model], default: str | None = None, **kwargs):
        super().__init__(**kwargs)
        if not heads:
            raise ValueError("ShopAssistant needs at least one head")
        default = default or next(iter(heads))
        if default not in heads:
            raise ValueError(f"default head {default!r} is not one of the heads {sorted(heads)}")
        for name, model in heads.items():
            if not hasattr(model, "serving_signatures"):
                raise ValueError(f"head {name!r} ({type(model).__name__}) has no serving_signatures()")
        self.heads = dict(heads)
        self.default = default
        self.built = True

    def serving_signatures(self) -> dict:
        """`name -> (function, input_signature)` over every head, `serving_default` the default head's."""
        signatures, default = {}, None
        for head, model in self.heads.items():
            own = model.serving_signatures()
            head_default = own.pop("serving_default")
            if not any(function is head_default[0] for function, _ in own.values()):
                own = {head: head_default, **own}
            if head == self.default:
                default = head_default
            for name, signature in own.items():
                signatures[f"{head}_{name}" if name in signatures else name] = signature
        return {"serving_default": default, **signatures}
