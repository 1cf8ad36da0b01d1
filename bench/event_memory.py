"""Peak memory of `train purchase` on event logs of 1M and 10M events: flat, not linear.

    python bench/event_memory.py                           # 1M and 10M events (about 40 minutes)
    python bench/event_memory.py --events 1000000 3000000  # other sizes
    python bench/event_memory.py --data /tmp/event_logs    # keep the generated logs there

Generates shops with the same 5,000 users and catalog and more sessions per user (a shop's log
growing over time; `data.generate_shop` writes them grouped by user, so every log needs the full
external sort), then runs `ecomrec-tf train purchase --epochs 1` on each in a fresh process: read and
sort the events on disk, build every example through `EventState`, store them in chunks, one epoch
over the training split, calibrate, evaluate the test split beside every baseline. Prints each run's
peak RSS (the process's `ru_maxrss`) and wall time, and the same for the reference a user would
otherwise run: the in-memory builder (`read_purchase_data` without `work_dir`, every example a dict),
measured on the smaller logs (`--in-memory-up-to`; beyond that it needs more memory than this machine
has). Memory per user and per catalog item is O(users + items), so the shop keeps both fixed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

USERS = 5_000
EVENTS_PER_SESSION = 11.3  # the generator's mean: 8 views plus clicks, carts and purchases

IN_MEMORY = """
import sys
from ecomrec_tf.data.purchase_data import read_purchase_data
data = read_purchase_data(sys.argv[1], sys.argv[2])
print(sum(len(split) for split in data.splits.values()), "examples")
"""


def measure(command: list[str]) -> tuple[float, float, str]:
    """`(peak RSS in MiB, wall seconds, last output line)` of a command run in a fresh process."""
    started = time.perf_counter()
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )  # fmt: skip
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"failed: {' '.join(command)}\n{output[-3000:]}")
    lines = [line for line in output.splitlines() if line.strip()]
    return usage.ru_maxrss / 1024, seconds, lines[-1] if lines else ""


def shop(data: Path, events: int) -> Path:
    """A generated shop of about `events` events (generated once, kept in `data`)."""
    out = data / f"shop-{events}"
    if not (out / "shop.json").is_file():
        sessions = events / USERS / EVENTS_PER_SESSION
        code = (
            "import sys; from ecomrec_tf.data.shop import ShopConfig, generate_shop; "
            f"generate_shop(sys.argv[1], ShopConfig(users={USERS}, sessions_per_user={sessions}))"
        )
        subprocess.run([sys.executable, "-c", code, str(out)], check=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--data", type=Path, help="where to keep the generated logs (default: a temp folder)")
    parser.add_argument("--in-memory-up-to", type=int, default=1_000_000)
    parser.add_argument("--encoder", default="minilm-l6")
    args = parser.parse_args()
    data = args.data or Path(tempfile.mkdtemp(prefix="event_memory_"))
    data.mkdir(parents=True, exist_ok=True)
    rows = []
    for events in args.events:
        folder = shop(data, events)
        logged = sum(json.loads((folder / "shop.json").read_text())["events"].values())
        items, log = str(folder / "items.jsonl"), str(folder / "events.jsonl")
        if events <= args.in_memory_up_to:
            rss, seconds, last = measure([sys.executable, "-c", IN_MEMORY, items, log])
            rows.append((logged, "in memory: examples only (reference)", rss, seconds, last))
            print(rows[-1], flush=True)
        command = [
            sys.executable, "-m", "ecomrec_tf.cli", "train", "purchase", "--items", items, "--events", log,
            "--epochs", "1", "--encoder", args.encoder, "--runs-dir", str(data / "runs"),
            "--run-name", f"events-{events}", "--overwrite", "--json",
        ]  # fmt: skip
        rss, seconds, _ = measure(command)
        result = json.loads((data / "runs" / f"events-{events}" / "test_purchase_metrics.json").read_text())
        note = f"test AUC {result['model']['auc']:.4f} on {result['model']['examples']:,} views"
        rows.append((logged, "on disk: train purchase, 1 epoch + evaluation", rss, seconds, note))
        print(rows[-1], flush=True)

    print("\n| events | run | peak RSS (MiB) | wall (s) | |\n|---:|---|---:|---:|---|")
    for logged, name, rss, seconds, note in rows:
        print(f"| {logged:,} | {name} | {rss:,.0f} | {seconds:,.0f} | {note} |")
    disk = [r for r in rows if r[1].startswith("on disk")]
    if len(disk) >= 2:
        (small, _, low, _, _), (large, _, high, _, _) = disk[0], disk[-1]
        print(
            f"\n{large / small:.1f}x the events: {high / low:.2f}x the peak RSS "
            f"(linear would be {large / small:.1f}x)"
        )


if __name__ == "__main__":
    main()
