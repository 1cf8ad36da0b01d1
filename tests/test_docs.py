"""Every code block of the README and docs/ runs (or parses) as written, so none can rot.

A Python block may use names the reader already has (their texts, items, a trained model); `SETUPS` gives
each block tiny stand-ins for exactly those names and checks what the block produces. A new block without an
entry here fails `test_every_block_has_a_setup`. The README's "In Python" block runs in test_readme.py.

Every line of a shell block is checked by its program (`SHELL`): `ecomrec-tf` lines are parsed by the CLI's
own parser (a renamed option or choice fails; the flows they run are test_cli.py's), `make` targets must
exist, `curl` lines run against the dev server (test_the_serving_blocks_run_against_one), the
`tf_only.py saved_model_cli` line runs in tests/export/test_saved_model.py, `pip install` lines name
extras pyproject.toml has; `docker` and Beam jobs on other engines (`python my_job.py --runner
DataflowRunner ...`: not installable here) are the exceptions, the latter checked for a runner Beam has.
A line of another program fails `test_every_shell_line_is_checked`.
"""

import json
import re
import shlex
import subprocess
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def blocks(language: str) -> list[tuple[str, int, str]]:
    """`(file name, index in that file, code)` of every ```language block."""
    found = []
    for path in DOCS:
        for index, code in enumerate(re.findall(rf"```{language}\n(.*?)```", path.read_text(), re.DOTALL)):
            found.append((path.name, index, code))
    return found


def shell_commands(program: str | None = None) -> list[tuple[str, list[str]]]:
    """`(file name, argv)` of every command of every ```bash block (of `program` only, if given):
    continued lines joined, quotes spanning lines kept, comments and a trailing `&` dropped."""
    found = []
    for name, _, code in blocks("bash"):
        pending = ""
        for line in code.replace("\\\n", " ").split("\n"):
            pending += line + "\n"
            try:
                argv = shlex.split(pending, comments=True)
            except ValueError:  # a quote still open: the command goes on on the next line
                continue
            pending = ""
            argv = argv[:-1] if argv[-1:] == ["&"] else argv
            if argv and (program is None or argv[0] == program):
                found.append((name, argv))
    return found


def cli_arguments(argv: list[str]) -> list[str]:
    """An `ecomrec-tf` line as a user fills it in: optional `[...]` parts given, the first of `a|b`
    alternatives, `...` (a path the reader picks) as a placeholder."""
    tokens = [token.strip("[]").split("|")[0] for token in argv[1:]]
    return ["placeholder" if token == "..." else token for token in tokens]


SHELL = {"ecomrec-tf", "make", "curl", "docker", ".venv/bin/python", "pip", "python"}
BEAM_RUNNERS = {"DataflowRunner", "FlinkRunner", "SparkRunner", "DirectRunner"}


def test_every_shell_line_is_checked():
    import tomllib

    commands = shell_commands()
    assert {argv[0] for _, argv in commands} <= SHELL, "check the new program's lines in tests/test_docs.py"
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for name, argv in shell_commands("pip"):  # pip install ".[extra]": the extra exists
        wanted = re.findall(r"\.\[(\w+)\]", " ".join(argv))
        assert argv[1] == "install" and wanted and set(wanted) <= set(extras), (name, argv)
    for name, argv in shell_commands("python"):  # a Beam job on another engine: a runner Beam has
        assert argv[1] == "my_job.py" and argv[argv.index("--runner") + 1] in BEAM_RUNNERS, (name, argv)
    assert [argv[1] for _, argv in commands if argv[0] == ".venv/bin/python"] == [
        "ecomrec_tf/serving/tf_only.py"
    ]  # run by tests/export/test_saved_model.py::test_runs_in_the_session_based_loader


def test_every_ecomrec_tf_line_parses_with_the_cli(capsys):
    from ecomrec_tf.cli import build_parser

    commands = shell_commands("ecomrec-tf")
    assert len(commands) >= 20
    for name, argv in commands:
        try:
            build_parser().parse_args(cli_arguments(argv))
        except SystemExit:
            pytest.fail(f"{name}: {shlex.join(argv)}: {capsys.readouterr().err.strip().splitlines()[-1]}")


def test_every_make_target_exists():
    makefile = (ROOT / "Makefile").read_text()
    targets = [argv[1] for _, argv in shell_commands("make")]
    assert targets and all(re.search(rf"^{target}:", makefile, re.MULTILINE) for target in targets), targets


ITEMS = {"A": {"category": "shoes", "price": 80.0}, "B": {"category": "shoes", "price": 120.0}}
TEXTS = {"A": "Acme runner | shoes", "B": "Acme trail | shoes"}


def augmentation(request):
    from ecomrec_tf.data import text_classification_dataset

    names = {"text_classification_dataset": text_classification_dataset}
    names |= {"texts": ["cheap red shoes please", "where is my parcel"] * 4, "label_ids": [0, 1] * 4}
    return names, lambda out: sum(int(batch[0].shape[0]) for batch in out["train"]) == 8


def live_ranking(request):
    from ecomrec_tf.encoders import load_encoder
    from ecomrec_tf.models import build_purchase_model

    model = build_purchase_model(
        load_encoder("tiny"), 16, vocabulary_sizes={"user": 2, "item": 3, "category": 2}
    )
    model.set_vocabularies({"user": ["u"], "item": ["A", "B"], "category": ["shoes"]})
    events = [{"user_id": "u", "item_id": "A", "timestamp": 10, "event": "view", "query": None}]
    names = {"items": ITEMS, "event_stream": events, "user_id": "u", "candidate_ids": ["A", "B"], "now": 60}
    names |= {"texts": TEXTS, "model": model}
    return names, lambda out: np.asarray(out["scores"]).shape == (1, 2)


def multi_task_trainer(request):
    import keras
    import tensorflow as tf

    from ecomrec_tf.data import text_classification_dataset
    from ecomrec_tf.encoders import load_encoder
    from ecomrec_tf.models import build_intent_model

    texts = ["where is my parcel", "refund please", "red shoes size 10", "cancel my order"] * 4
    tiny = lambda name: load_encoder("tiny")  # noqa: E731  (the reader's MiniLM; tiny keeps the suite fast)
    names = {"tf": tf, "keras": keras, "load_encoder": tiny, "build_intent_model": build_intent_model}
    names |= {"text_classification_dataset": text_classification_dataset, "labels": ["a", "b"]}
    names |= {"texts": texts, "ids": [0, 1] * 8, "valid_texts": texts[:4], "valid_ids": [0, 1, 0, 1]}
    names |= {"shop_texts": texts, "total_steps": 3}
    return names, lambda out: (Path("runs/multi") / "history.json").is_file()


def nightly_top_k(request):
    import shutil

    from tests.serving.test_beam import EVENTS, ITEMS, T0

    shutil.copytree(request.getfixturevalue("tiny_purchase_export")[1], "saved_models/purchase/1")
    Path("data/shop").mkdir(parents=True)
    Path("data/shop/items.jsonl").write_text(
        "".join(json.dumps({"item_id": i} | v) + "\n" for i, v in ITEMS.items())
    )
    Path("data/shop/events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in EVENTS))
    names = {"now": T0 + 200, "item_counts_now": {}}

    def check(out):
        lists = [json.loads(line) for path in Path("out").glob("top_k*.jsonl") for line in path.open()]
        return sorted(r["user_id"] for r in lists) == ["u1", "u2", "u3"] and Path("out/catalog.npz").is_file()

    return names, check


SETUPS = {
    ("data.md", 0): augmentation,
    ("scoring.md", 0): nightly_top_k,
    ("purchase.md", 0): live_ranking,
    ("training.md", 0): multi_task_trainer,
}
SERVED = {
    ("serving.md", 0),
    ("serving.md", 1),
}  # need a model server: test_the_serving_blocks_run_against_one
README_BLOCKS = {("README.md", 0)}  # test_readme.py


def test_every_block_has_a_setup():
    every = {(name, index) for name, index, _ in blocks("python")}
    assert every == set(SETUPS) | SERVED | README_BLOCKS, "give the new block a setup in tests/test_docs.py"


@pytest.mark.slow
@pytest.mark.parametrize("key", sorted(SETUPS), ids=[f"{n}-{i}" for n, i in sorted(SETUPS)])
def test_each_block_runs_as_written(key, tmp_path, monkeypatch, request):
    monkeypatch.chdir(tmp_path)
    code = next(c for name, index, c in blocks("python") if (name, index) == key)
    names, check = SETUPS[key](request)
    exec(compile(code, key[0], "exec"), names)  # noqa: S102
    assert check(names), key


def test_the_toml_config_blocks_are_valid_run_configs():
    import tomllib

    from ecomrec_tf.training.config import parse_config

    found = blocks("toml")
    assert found
    for name, index, code in found:
        assert parse_config(tomllib.loads(code), f"{name} block {index}").tasks


@pytest.mark.slow
def test_the_serving_blocks_run_against_one(tiny_intent_export, tiny_purchase_export, tmp_path):
    """The serving guide's gRPC and client blocks, against `ecomrec-tf serve`'s server on TF Serving's
    ports, over tiny intent, purchase and shop-assistant (reply with a decoder) exports."""
    import shutil

    from ecomrec_tf.data.event_state import EventState
    from ecomrec_tf.encoders import load_encoder
    from ecomrec_tf.export import export_saved_model
    from ecomrec_tf.models import ShopAssistant, build_reply_model
    from ecomrec_tf.serving.dev_server import DevServer

    base = tmp_path / "saved_models"
    shutil.copytree(tiny_intent_export[1], base / "intent" / "1")
    shutil.copytree(tiny_purchase_export[1], base / "purchase" / "1")
    bank = [{"text": "Sorry to hear that: a colleague will call you today.", "intent": "complaint"}]
    reply = build_reply_model(load_encoder("tiny"), bank, 24, decoder_layers=1, max_reply_length=4)
    export_saved_model(ShopAssistant({"reply": reply}), base / "shop_assistant")
    server = DevServer(base)
    rest = server.rest(port=8501)
    grpc_server, _ = server.grpc(port=8500)
    items = {
        "SKU-170031": {"category": "shoes", "price": 80.0},
        "SKU-120002": {"category": "shoes", "price": None},
    }
    state = EventState(items)
    texts = {"SKU-170031": "Acme runner | shoes", "SKU-120002": "Acme trail | shoes"}
    try:
        for name, index, code in blocks("python"):
            if (name, index) in SERVED:
                names = {"state": state, "now": 1_700_000_000, "texts": texts}
                exec(compile(code, name, "exec"), names)  # noqa: S102
        curls = shell_commands("curl")
        assert len(curls) >= 5
        for name, argv in curls:
            result = subprocess.run([*argv, "-s", "--fail-with-body"], capture_output=True, text=True)
            assert result.returncode == 0, f"{name}: {shlex.join(argv)}: {result.stdout}"
            assert "error" not in json.loads(result.stdout), result.stdout
    finally:
        rest.shutdown()
        grpc_server.stop(None)
