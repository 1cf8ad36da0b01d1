"""Purchase-model speed, one run: scored candidates/s of the attention and two-tower models, and top-100
retrieval latency from 100,000 items.

    python bench/purchase.py                  # MiniLM-L6 encoder (what `train purchase` uses)
    python bench/purchase.py --encoder tiny   # a quick run

Scoring is measured two ways: from raw strings (`rank`: the frozen encoder reads the user's history
and every candidate's text, as the SavedModel does) and from precomputed item and query vectors
(`core`: what serving costs when item vectors are cached, e.g. for re-ranking retrieved candidates).
Retrieval is exact: a matrix product and `tf.math.top_k`, beside a full numpy sort as the baseline.
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
from ecomrec_tf.data.shop import generate_catalog
from ecomrec_tf.data.task_datasets import item_text
from ecomrec_tf.encoders import load_encoder
from ecomrec_tf.models import build_purchase_model, top_k_items


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
    texts = [item_text(item) for item in catalog]
    prices = [item["price"] for item in catalog]
    history = tf.constant([rng.sample(texts, args.history) for _ in range(args.users)])
    picks = [[rng.randrange(len(texts)) for _ in range(args.candidates)] for _ in range(args.users)]
    candidates = tf.constant([[texts[i] for i in row] for row in picks])
    candidate_price = tf.constant([[prices[i] for i in row] for row in picks], tf.float32)
    query = tf.constant(["running shoes"] * args.users)
    scored = args.users * args.candidates

    encoder = load_encoder(args.encoder)
    print(
        f"encoder {args.encoder}; {args.users} users x {args.candidates} candidates, "
        f"{args.history} history items each; {os.cpu_count()} CPU cores"
    )
    print(f"{'model':<11}{'scoring from':<22}{'p50 ms':>9}{'p99 ms':>9}{'candidates/s':>14}")
    rates = {}
    for mode in ("attention", "two_tower"):
        model = build_purchase_model(encoder, sequence_length=64, mode=mode)
        rank = tf.function(model.rank)
        raw_times = timings(lambda rank=rank: rank(query, history, candidates, candidate_price), args.seconds)
        # Cached vectors: the same request as core inputs (what a re-ranker with an item-vector store runs).
        vectorize = tf.function(model.vectorize)
        vectors = vectorize(
            {
                "history": tf.repeat(history, args.candidates, axis=0),
                "item": tf.reshape(candidates, [-1]),
                "query": tf.repeat(query, args.candidates),
                "price": tf.reshape(candidate_price, [-1]),
            }
        )
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
    text_vectors = model.encoder(tf.constant(texts))[0].numpy()
    noise = np.random.default_rng(0)
    rows = noise.integers(0, len(texts), args.items)
    item_text_vectors = text_vectors[rows] + 0.05 * noise.standard_normal((args.items, text_vectors.shape[1]))
    item_prices = np.asarray(prices, np.float32)[rows] * np.exp(noise.normal(0, 0.2, args.items)).astype(
        "float32"
    )
    item_vectors = tf.concat(
        [
            tf.math.l2_normalize(model._item_vectors(tf.constant(part, tf.float32), tf.constant(p))[0], -1)
            for part, p in zip(np.array_split(item_text_vectors, 20), np.array_split(item_prices, 20))
        ],
        0,
    )
    users = model.embed_users(history, query)
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
        base = timings(lambda u_np=u_np: np.argsort(-(u_np @ vectors_np.T), axis=1)[:, :100], args.seconds)
        ours = timings(lambda u=u: retrieve(u), args.seconds)
        exact = np.argsort(-(u_np @ vectors_np.T), axis=1, kind="stable")[:, :100]
        agree = np.mean([len(set(a) & set(b)) / 100 for a, b in zip(exact, retrieve(u)[1].numpy())])
        for name, times in (("numpy matmul + full argsort", base), ("tf matmul + top_k", ours)):
            ratio = statistics.median(base) / statistics.median(times)
            p50, p99 = percentile(times, 50), percentile(times, 99)
            print(f"{name:<30}{batch:>6}{p50:>9.2f}{p99:>9.2f}{ratio:>9.1f}x")
        print(f"  top-100 overlap with the full sort: {agree:.3f}")
    print("beyond a few hundred thousand items: an approximate index over the same vectors (ScaNN, FAISS)")


if __name__ == "__main__":
    main()
