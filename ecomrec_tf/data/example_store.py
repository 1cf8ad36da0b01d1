"""Purchase examples on disk, for event logs larger than memory.

`StoredExamples.write` takes examples as `events.iter_purchase_examples` yields them (in time
order) and writes chunks of columns (`.npz`: item rows into the sorted catalog, history rows,
query rows, the count features, label, time); reading gives them back as example dicts
(`__iter__`) or as `task_datasets.purchase_columns` chunks (`columns`) without holding more than
one chunk. `between` and `scored` are views of the same files (a time range, no catalog negatives).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from ecomrec_tf.data.event_state import FEATURES
from ecomrec_tf.data.task_datasets import item_text

CHUNK = 16_384  # examples per file


class StoredExamples:
    """Examples in `directory` (written by `write`), read in time order, within `[start, end)`.

    Args:
        directory: what `write` wrote.
        items: the catalog by item id the examples were built from.
        start, end: the time range of this view (Unix seconds).
        negatives: include catalog negatives.
    """

    def __init__(self, directory: str | Path, items: dict[str, dict], start: float = -math.inf,
                 end: float = math.inf, negatives: bool = True):  # fmt: skip
        self.directory = Path(directory)
        self.items = items
        self.meta = json.loads((self.directory / "meta.json").read_text())
        self.start, self.end, self.negatives = start, end, negatives
        ids = sorted(items)
        self._ids = np.array([*ids, ""], dtype=object)  # row -1 (history padding) is ""
        self._texts = np.array([*(item_text(items[i]) for i in ids), ""], dtype=object)
        self._categories = np.array([items[i]["category"] for i in ids], dtype=object)
        prices = [items[i].get("price") for i in ids]
        self._prices = np.array([np.nan if p is None else p for p in prices], dtype=np.float32)
        self._queries = np.array(self.meta["queries"], dtype=object)
        self._length: int | None = None

    @classmethod
    def write(cls, examples: Iterable[dict], directory: str | Path, items: dict[str, dict],
              history_size: int = 10) -> StoredExamples:  # fmt: skip
        """Writes examples (in time order) to `directory` and returns them, stored."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        row = {item_id: i for i, item_id in enumerate(sorted(items))}
        queries: dict[str, int] = {"": 0}
        chunks, part = [], []

        def flush():
            if not part:
                return
            history = np.full((len(part), history_size), -1, np.int32)
            for i, example in enumerate(part):
                ids = example["history"][:history_size]
                history[i, : len(ids)] = [row[item_id] for item_id in ids]
            columns = {
                "user_id": np.array([e["user_id"] for e in part]),
                "item": np.array([row[e["item_id"]] for e in part], np.int32),
                "history": history,
                "query": np.array(
                    [queries.setdefault(e["query"] or "", len(queries)) for e in part], np.int32
                ),
                "label": np.array([e["label"] for e in part], np.int8),
                "timestamp": np.array([e["timestamp"] for e in part], np.int64),
                "catalog_negative": np.array([e["catalog_negative"] for e in part], bool),
                "features": np.array([[e["features"][name] for name in FEATURES] for e in part], np.float32),
            }
            name = f"chunk-{len(chunks):06d}.npz"
            np.savez(directory / name, **columns)
            times = columns["timestamp"]
            chunks.append({"file": name, "examples": len(part), "first": int(times[0]),
                           "last": int(times[-1])})  # fmt: skip
            part.clear()

        for example in examples:
            part.append(example)
            if len(part) >= CHUNK:
                flush()
        flush()
        meta = {"chunks": chunks, "queries": list(queries), "history_size": history_size}
        (directory / "meta.json").write_text(json.dumps(meta))
        return cls(directory, items)

    def between(self, start: float, end: float) -> StoredExamples:
        """The examples with `start <= timestamp < end` (within this view's range)."""
        return self._view(max(start, self.start), min(end, self.end), self.negatives)

    def scored(self) -> StoredExamples:
        """The real views, without catalog negatives."""
        return self._view(self.start, self.end, False)

    def _view(self, start, end, negatives) -> StoredExamples:
        view = object.__new__(StoredExamples)
        view.__dict__.update(self.__dict__, start=start, end=end, negatives=negatives, _length=None)
        return view

    def queries(self) -> set[str]:
        return set(self.meta["queries"])

    def _chunks(
        self, rng: np.random.Generator | None = None
    ) -> Iterator[tuple[np.lib.npyio.NpzFile, np.ndarray]]:
        """`(the open chunk file, rows kept)` per chunk overlapping this view, in time order or `rng`'s.
        Arrays are read from the file only when the caller asks for them."""
        chunks = self.meta["chunks"]
        for chunk in chunks if rng is None else [chunks[i] for i in rng.permutation(len(chunks))]:
            if chunk["last"] < self.start or chunk["first"] >= self.end:
                continue
            with np.load(self.directory / chunk["file"]) as stored:
                times = stored["timestamp"]
                keep = (times >= self.start) & (times < self.end)
                if not self.negatives:
                    keep &= ~stored["catalog_negative"]
                if keep.any():
                    yield stored, np.flatnonzero(keep)

    def __len__(self) -> int:
        if self._length is None:
            self._length = sum(len(rows) for _, rows in self._chunks())
        return self._length

    def __bool__(self) -> bool:
        return len(self) > 0

    def __getitem__(self, index: int) -> dict:
        """The example at `index` (time order): reads one chunk."""
        if index < 0:
            index += len(self)
        for stored, rows in self._chunks():
            if index < len(rows):
                return next(iter(self._examples(stored, rows[index : index + 1])))
            index -= len(rows)
        raise IndexError("example index out of range")

    def __iter__(self) -> Iterator[dict]:
        for stored, rows in self._chunks():
            yield from self._examples(stored, rows)

    def _examples(self, stored, rows: np.ndarray) -> Iterator[dict]:
        columns = {name: stored[name] for name in _ALL}  # each read once from the file
        for i in rows:
            history = columns["history"][i]
            yield {
                "user_id": str(columns["user_id"][i]),
                "item_id": self._ids[columns["item"][i]],
                "timestamp": int(columns["timestamp"][i]),
                "history": [self._ids[r] for r in history[history >= 0]],
                "query": self._queries[columns["query"][i]] or None,
                "label": int(columns["label"][i]),
                "features": dict(zip(FEATURES, columns["features"][i].tolist())),
                "catalog_negative": bool(columns["catalog_negative"][i]),
            }

    def columns(self, rng: np.random.Generator | None = None) -> Iterator[dict[str, np.ndarray]]:
        """`task_datasets.purchase_columns` of each chunk (`history` as wide as `history_size`), in
        time order, or in a random chunk order drawn from `rng`."""
        for stored, rows in self._chunks(rng):
            items, history = stored["item"][rows], stored["history"][rows]
            columns = {
                "history_ids": self._ids[history],
                "history": self._texts[history],
                "item_id": self._ids[items],
                "item": self._texts[items],
                "category": self._categories[items],
                "user_id": stored["user_id"][rows].astype(object),
                "query": self._queries[stored["query"][rows]],
                "price": self._prices[items],
                "label": stored["label"][rows].astype(np.float32),
            }
            features = stored["features"][rows]
            columns.update({name: features[:, k] for k, name in enumerate(FEATURES)})
            yield columns


_ALL = ("user_id", "item", "history", "query", "label", "timestamp", "catalog_negative", "features")
