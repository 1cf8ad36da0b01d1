"""Item features besides the text: an image vector and attributes, read from the items file.

An items record may carry, besides `title`, `category`, `description` and `price`:

- `image_vector`: a list of floats the shop computed with any image model (e.g. a Keras application's
  pooled output); every item that has one has the same length; missing or null for items without an
  image. In CSV, a JSON list or numbers separated by spaces in one cell.
- `attributes`: an object `{name: number or string}` (brand, material, weight, rating...); in CSV or
  TFRecord, one field per attribute named `attributes.<name>` (also accepted in JSONL). A name whose
  values are all numbers is a numeric attribute, any other a categorical one. Missing values are
  missing for that item only.

`ItemFeatures` describes what a catalog has (`ItemFeatures.infer(items)`); a purchase model trained on
it stores it in its config and takes the matching inputs (`image_vector`, `numeric_attributes`,
`categorical_attributes`, and their `history_` forms); `values(item)` gives one item's inputs, NaN and ""
where a value is missing.
"""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np

from ecomrec_tf.data.readers import DataError

PREFIX = "attributes."


def parse_item_features(record: dict, where: str) -> dict:
    """`{"image_vector": list of floats or None, "attributes": {name: float or str}}` of one items record.

    Raises:
        DataError: naming `where` and the field, for an image vector that is not a list of finite
            numbers, or attributes that are not an object of numbers and strings.
    """
    image = record.get("image_vector")
    if isinstance(image, str):  # CSV: a JSON list, or numbers separated by spaces
        text = image.strip()
        try:
            image = json.loads(text) if text.startswith("[") else [float(v) for v in text.split()]
        except ValueError:
            raise DataError(
                f"{where}: field 'image_vector' is not a list of numbers: {text[:40]!r}"
            ) from None
    if isinstance(image, (int, float)) and not isinstance(image, bool):
        image = [image]  # a one-value TFRecord float list
    if image in (None, []):
        image = None
    elif not isinstance(image, list) or not all(_is_number(v) for v in image):
        raise DataError(f"{where}: field 'image_vector' must be a list of numbers")
    elif not all(math.isfinite(v) for v in image):
        raise DataError(f"{where}: field 'image_vector' holds a value that is not finite")
    attributes = record.get("attributes") or {}
    if isinstance(attributes, str):
        try:
            attributes = json.loads(attributes)
        except ValueError:
            raise DataError(f"{where}: field 'attributes' is not a JSON object") from None
    if not isinstance(attributes, dict):
        raise DataError(f"{where}: field 'attributes' must be an object {{name: value}}")
    attributes = dict(attributes) | {k[len(PREFIX) :]: v for k, v in record.items() if k.startswith(PREFIX)}
    for name, value in attributes.items():
        if value is not None and not isinstance(value, str) and not _is_number(value):
            raise DataError(f"{where}: attribute {name!r} must be a number or a string, got {value!r}")
        if _is_number(value) and not math.isfinite(value):
            raise DataError(f"{where}: attribute {name!r} is not finite")
    attributes = {k: v for k, v in attributes.items() if v is not None and v != ""}
    return {"image_vector": None if image is None else [float(v) for v in image], "attributes": attributes}


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _as_number(value) -> float | None:
    if _is_number(value):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


@dataclasses.dataclass(frozen=True)
class ItemFeatures:
    """The non-text features a catalog's items have: an image vector's size (0: none), and the
    names of the numeric and the categorical attributes.

    Example:
        >>> items = {"A": {"image_vector": [0.5, 1.0], "attributes": {"weight": 2.0, "brand": "Acme"}},
        ...          "B": {"image_vector": None, "attributes": {"brand": "Zeta"}}}
        >>> features = ItemFeatures.infer(items)
        >>> features
        ItemFeatures(image_dim=2, numeric=('weight',), categorical=('brand',))
        >>> features.values(items["B"])["numeric_attributes"]
        [nan]
    """

    image_dim: int = 0
    numeric: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()

    def __post_init__(self):
        object.__setattr__(self, "numeric", tuple(self.numeric))
        object.__setattr__(self, "categorical", tuple(self.categorical))

    def __bool__(self) -> bool:
        return bool(self.image_dim or self.numeric or self.categorical)

    @classmethod
    def infer(cls, items: dict[str, dict]) -> ItemFeatures:
        """What the catalog (`data.read_items`) has; raises DataError for image vectors of several lengths."""
        sizes = {len(item["image_vector"]) for item in items.values() if item.get("image_vector")}
        if len(sizes) > 1:
            raise DataError(f"items: image vectors of different lengths {sorted(sizes)}; use one image model")
        values: dict[str, list] = {}
        for item in items.values():
            for name, value in (item.get("attributes") or {}).items():
                values.setdefault(name, []).append(value)
        numeric = sorted(n for n, vs in values.items() if all(_as_number(v) is not None for v in vs))
        categorical = sorted(set(values) - set(numeric))
        return cls(sizes.pop() if sizes else 0, tuple(numeric), tuple(categorical))

    @classmethod
    def from_config(cls, config: dict | None) -> ItemFeatures:
        return cls(**(config or {}))

    def get_config(self) -> dict:
        return {
            "image_dim": self.image_dim,
            "numeric": list(self.numeric),
            "categorical": list(self.categorical),
        }

    def shapes(self) -> dict[str, tuple[int, str]]:
        """`{input name: (size, dtype)}` of one item's inputs, for the features the catalog has."""
        shapes = {
            "image_vector": (self.image_dim, "float32"),
            "numeric_attributes": (len(self.numeric), "float32"),
            "categorical_attributes": (len(self.categorical), "string"),
        }
        return {name: shape for name, shape in shapes.items() if shape[0]}

    def values(self, item: dict | None) -> dict[str, list]:
        """One item's inputs (`shapes`): NaN for a missing number, "" for a missing category; `None`
        (padding) is an item with nothing."""
        item = item or {}
        attributes = item.get("attributes") or {}
        numbers = [_as_number(attributes.get(name)) for name in self.numeric]
        values = {
            "image_vector": list(item.get("image_vector") or [math.nan] * self.image_dim),
            "numeric_attributes": [math.nan if v is None else v for v in numbers],
            "categorical_attributes": [str(attributes.get(name, "")) for name in self.categorical],
        }
        return {name: values[name] for name in self.shapes()}

    def matrices(self, item_ids: list[str], items: dict[str, dict]) -> dict[str, np.ndarray]:
        """`{input name: (len(item_ids), size) array}` of the items' `values`, row by row."""
        rows = [self.values(items[item_id]) for item_id in item_ids]
        return {
            name: np.asarray(
                [row[name] for row in rows], object if dtype == "string" else np.float32
            ).reshape(len(rows), size)
            for name, (size, dtype) in self.shapes().items()
        }
