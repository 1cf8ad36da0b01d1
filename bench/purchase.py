"""Purchase-model speed, one run: scored candidates/s of the attention and two-tower models, and top-100
retrieval latency from 100,000 items.

    python bench/purchase.py                  # MiniLM-L6 encoder (what `train purchase` uses)
    python bench/purchase.py --encoder tiny   # a quick run

Requests are what a shop sends: distinct users with their histories, ids and event counts from an
`EventState` fed with events, and distinct candidates from a 960-item catalog. Scoring is measured
two ways: from raw strings (`rank`: the frozen encoder reads the user's history and every
candidate's text, as the SavedModel does) and from precomputed item and query vectors
(`core`: what serving costs when item vectors are cached, e.g. for re-ranking retrieved candidates).
Retrieval is exact: a matrix product and `tf.math.top_k`, beside numpy `argpartition` and a sort of the
top k (the best exact numpy way) as the baseline.
Every number is measured in this run on this machine.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics

import numpy as np
import tensorflow as tf
from timing import timings

import ecomrec_tf  # noqa: F401
from ecomrec_tf.data.event_state import EventState
from ecomrec_tf.data.shop import generate_catalog
from ecomrec_tf.data.task_datasets import item_text
from ecomrec_tf.encoders import load_encoder
from ecomrec_tf.models import build_purchase_model, top_k_items
from ecomrec_tf.models.purchase_model import candidate_name, input_specs


def percentile(times: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(times) * 1000, q))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", default="minilm-l6")
    parser.add_argument("--users", type=int, default=8, help="users per request")
    parser.add_argument("--candidates", type=int, default=100, help="candidates per user")
    parser.add_argument("--history", type=int, default=10, help="history items per user")
    parser.add_argument("--items", type=int, default=100_000, help="catalog size for retrieval")
    parser.add_argument("--seconds", type=float, default=5.0, help="time per measurement")
    args = parser.parse_args()

    rng = random.Random(0)
    catalog = generate_catalog(seed=0, items_per_category=40)  # 960 real item texts
    items = {item["item_id"]: item for item in catalog}
    texts = {item_id: item_text(item) for item_id, item in items.items()}
    ids = sorted(items)
    # Requests as a shop sends them: a live event state's histories, ids and counts (EventState.request).
    state = EventState(items)
    for time in range(20 * args.users * args.history):
        kind = rng.choice(["view", "view", "click", "purchase"])
        user = f"U{rng.randrange(args.users)}"
        state.apply({"user_id": user, "item_id": rng.choice(ids), "timestamp": time, "event": kind})
    queries = [
        "running shoes",
        "red kettle",
        "",
        "wireless headphones",
        "usb c cable",
        "",
        "yoga mat",
        "desk lamp",
    ]
    requests = [
        state.request(f"U{u}", rng.sample(ids, args.candidates), time, texts, query=queries[u % len(queries)])
        for u in range(args.users)
    ]
    scored = args.users * args.candidates

    encoder = load_encoder(args.encoder)
    print(
        f"encoder {args.encoder}; {args.users} users x {args.candidates} candidates, "
        f"{args.history} history items each; {os.cpu_count()} CPU cores"
    )
    print(f"{'model':<11}{'scoring from':<22}{'p50 ms':>9}{'p99 ms':>9}{'candidates/s':>14}")
    rates = {}
    for mode in ("attention", "two_tower"):
        model = build_purchase_model(
            encoder, sequence_length=64, mode=mode, vocabulary_sizes={"user": args.users, "item": len(ids)}
        )
        model.set_vocabularies({"user": [f"U{u}" for u in range(args.users)], "item": ids})
        inputs = model.rank_inputs(requests)
        rank = tf.function(model.rank)
        raw_times = timings(lambda rank=rank, x=inputs: rank(x), args.seconds)
        # Cached vectors: the same request as core inputs (what a re-ranker with an item-vector store runs).
        raw = {
            name: tf.repeat(inputs[name], args.candidates, axis=0)
            for name in input_specs(model.parts, "user")
        }
        raw |= {
            name: tf.reshape(inputs[candidate_name(name)], [-1]) for name in input_specs(model.parts, "item")
        }
        vectors = tf.function(model.vectorize)(raw)
        core = tf.function(lambda v, model=model: model.core(v, training=False)["purchase_probability"])
        core_times = timings(lambda core=core, vectors=vectors: core(vectors), args.seconds)
        for source, times in (("raw strings (rank)", raw_times), ("cached vectors", core_times)):
            rate = scored / statistics.median(times)
            rates[(mode, source)] = rate
            p50, p99 = percentile(times, 50), percentile(times, 99)
            print(f"{mode:<11}{source:<22}{p50:>9.1f}{p99:>9.1f}{rate:>14,.0f}")
    for source in ("raw strings (rank)", "cached vectors"):
        ratio = rates[("two_tower", source)] / rates[("attention", source)]
        print(f"two-tower / attention, {source}: {ratio:.2f}x")

    # Retrieval: unit item vectors from the item tower on real text vectors (+ noise: distinct items).
    text_vectors = model.encoder(tf.constant([texts[i] for i in ids]))[0].numpy()
    noise = np.random.default_rng(0)
    rows = noise.integers(0, len(ids), args.items)
    item_text_vectors = text_vectors[rows] + 0.05 * noise.standard_normal((args.items, text_vectors.shape[1]))
    prices = np.asarray([items[i]["price"] for i in ids], np.float32)
    item_prices = prices[rows] * np.exp(noise.normal(0, 0.2, args.items)).astype("float32")
    item_ids = np.asarray(ids, dtype=object)[rows]
    item_vectors = tf.concat(
        [
            tf.math.l2_normalize(
                model._item_vectors(tf.constant(v, tf.float32), tf.constant(p), tf.constant(i))[0], -1
            )
            for v, p, i in zip(*(np.array_split(a, 20) for a in (item_text_vectors, item_prices, item_ids)))
        ],
        0,
    )
    users = model.embed_users({name: inputs[name] for name in input_specs(model.parts, "user")})
    print(f"\nexact top-100 retrieval from {args.items:,} items ({item_vectors.shape[1]}-d unit vectors)")
    print(f"{'method':<30}{'batch':>6}{'p50 ms':>9}{'p99 ms':>9}{'vs numpy':>10}")
    retrieve = tf.function(lambda u: top_k_items(u, item_vectors, k=100))
    vectors_np = item_vectors.numpy()
    for batch in (1, 32):
        u = (
            tf.tile(users[:1], [batch, 1])
            if batch == 1
            else tf.tile(users, [batch // args.users + 1, 1])[:batch]
        )
        u_np = u.numpy()
        base = timings(lambda u_np=u_np: numpy_top_k(u_np @ vectors_np.T, 100), args.seconds)
        ours = timings(lambda u=u: retrieve(u), args.seconds)
        exact = np.argsort(-(u_np @ vectors_np.T), axis=1, kind="stable")[:, :100]
        agree = np.mean([len(set(a) & set(b)) / 100 for a, b in zip(exact, retrieve(u)[1].numpy())])
        for name, times in (("numpy matmul + argpartition", base), ("tf matmul + top_k", ours)):
            ratio = statistics.median(base) / statistics.median(times)
            p50, p99 = percentile(times, 50), percentile(times, 99)
            print(f"{name:<30}{batch:>6}{p50:>9.2f}{p99:>9.2f}{ratio:>9.1f}x")
        print(f"  top-100 overlap with the full sort: {agree:.3f}")
    print("beyond a few hundred thousand items: an approximate index over the same vectors (ScaNN, FAISS)")


def numpy_top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """The best exact top-k in numpy: `argpartition` (linear time), then a sort of the k."""
    top = np.argpartition(-scores, k, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1)
    return np.take_along_axis(top, order, axis=1)


if __name__ == "__main__":
    main()
