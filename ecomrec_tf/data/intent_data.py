"""The embedded default intent data set, generated deterministically from a seed.

Test and validation utterances come from paraphrase templates, and slot values (items, brands,
models, ...), held out of training, so their accuracy measures generalisation, not memorisation.
"""

from __future__ import annotations

import json
import random
import string
from pathlib import Path

from ecomrec_tf.data import lexicon
from ecomrec_tf.data.intent_templates import INTENT_TEMPLATES
from ecomrec_tf.data.noise import add_noise

SPLITS = ("train", "valid", "test")
PREFIXES = ["", "", "", "", "hi ", "hello, ", "hey ", "excuse me, ", "quick question: ", "good morning, "]
SUFFIXES = ["", "", "", "", "?", " please", " thanks", " asap", "!", " thank you", " :)"]
HELD_OUT_FRACTION = 0.3


def _split_values(values: list[str], rng: random.Random) -> dict[str, list[str]]:
    values = sorted(values)
    rng.shuffle(values)
    n_held = max(1, round(len(values) * HELD_OUT_FRACTION))
    return {"train": values[n_held:], "held_out": values[:n_held]}


def _order_id(rng: random.Random) -> str:
    digits = "".join(rng.choices(string.digits, k=rng.choice((6, 7, 8))))
    return rng.choice((f"#{digits}", f"#A-{digits[:5]}", digits, f"no. {digits}"))


class _Filler:
    """Fills template slots from one side (train or held out) of every slot-value list."""

    def __init__(self, seed: int):
        rng = random.Random(seed)
        self.rng = rng
        sides = {"train": {}, "held_out": {}}
        for name, values in {
            "model": lexicon.MODELS,
            "color": lexicon.COLORS,
            "size": lexicon.SIZES,
            "capacity": lexicon.CAPACITIES,
            "price": lexicon.PRICES,
            "date": lexicon.DATES,
            "code": lexicon.PROMO_CODES,
            "payment": lexicon.PAYMENT_METHODS,
            "carrier": lexicon.CARRIERS,
        }.items():
            for side, part in _split_values(list(values), rng).items():
                sides[side][name] = part
        for side in sides:
            sides[side]["category"] = {}
        for category in lexicon.CATEGORIES:
            items = _split_values(lexicon.CATEGORIES[category], rng)
            brands = _split_values(lexicon.BRANDS[category], rng)
            for side in sides:
                sides[side]["category"][category] = (items[side], brands[side])
        self.sides = sides

    def fill(self, template: str, side: str) -> str:
        values = self.sides[side]
        category = self.rng.choice(sorted(values["category"]))
        items, brands = values["category"][category]
        slots = {name: self.rng.choice(options) for name, options in values.items() if name != "category"}
        slots.update(item=self.rng.choice(items), brand=self.rng.choice(brands), order_id=_order_id(self.rng))
        return template.format(**slots)


def split_templates(seed: int) -> dict[str, dict[str, list[str]]]:
    """intent -> split -> templates; test and valid each get at least two held-out templates."""
    rng = random.Random(seed)
    result = {}
    for intent in sorted(INTENT_TEMPLATES):
        templates = list(INTENT_TEMPLATES[intent])
        rng.shuffle(templates)
        n_eval = max(2, round(len(templates) * 0.15))
        result[intent] = {
            "test": templates[:n_eval],
            "valid": templates[n_eval : 2 * n_eval],
            "train": templates[2 * n_eval :],
        }
    return result


def generate_intent_data(
    seed: int = 0,
    train_per_intent: int = 200,
    eval_per_intent: int = 60,
) -> dict[str, list[dict[str, str]]]:
    """Generates the intent set: split name -> list of `{"text", "label"}` records.

    Args:
        seed: the same seed gives the same data, byte for byte.
        train_per_intent: training utterances per intent.
        eval_per_intent: validation and test utterances per intent, each.

    Returns:
        `{"train": [...], "valid": [...], "test": [...]}`. Validation and test use templates and
        slot values unseen in training; no text appears in two splits.

    Example:
        >>> data = generate_intent_data(seed=0, train_per_intent=5, eval_per_intent=2)
        >>> len({r["label"] for r in data["train"]})
        22
    """
    filler = _Filler(seed)
    rng = filler.rng
    templates = split_templates(seed)
    seen: set[str] = set()
    data: dict[str, list[dict[str, str]]] = {}
    for split in SPLITS:
        count = train_per_intent if split == "train" else eval_per_intent
        side = "train" if split == "train" else "held_out"
        records = []
        for intent in sorted(templates):
            texts: list[str] = []
            for _ in range(count * 20):  # bounded: short templates have few distinct variants
                if len(texts) == count:
                    break
                core = filler.fill(rng.choice(templates[intent][split]), side)
                text = add_noise(rng.choice(PREFIXES) + core + rng.choice(SUFFIXES), rng).strip()
                if text not in seen:
                    seen.add(text)
                    texts.append(text)
            records += [{"text": text, "label": intent} for text in texts]
        rng.shuffle(records)
        data[split] = records
    return data


def write_jsonl(records: list[dict], path: str | Path) -> Path:
    """Writes records as UTF-8 JSON lines (non-ASCII kept as is)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as file:
        for record in records:
            file.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path


def write_intent_data(out_dir: str | Path, seed: int = 0, **kwargs) -> dict[str, Path]:
    """Generates the intent set and writes `train.jsonl`, `valid.jsonl`, `test.jsonl` in `out_dir`."""
    data = generate_intent_data(seed=seed, **kwargs)
    return {split: write_jsonl(records, Path(out_dir) / f"{split}.jsonl") for split, records in data.items()}
