"""`ecomrec-tf ensemble ...`: several trained models of one head as one model, reported beside its members."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from ecomrec_tf.cli.options import (
    HelpFormatter,
    add,
    command,
    load_model,
    print_table,
    run_setting,
    subcommands,
)
from ecomrec_tf.errors import ConfigError


def members_and_ensemble(args):
    from ecomrec_tf.models.ensemble import build_ensemble

    if len(args.model) < 2:
        raise ConfigError("ensemble: give --model at least twice")
    members = [load_model(path) for path in args.model]
    try:
        return members, build_ensemble(members, args.method, args.weights)
    except ValueError as error:
        raise ConfigError(f"ensemble: {error}") from None


def finish(args, ensemble, rows: dict[str, dict], columns: list[str], stacked) -> None:
    """Saves the ensemble and its report to `--out`, and prints the table."""
    from ecomrec_tf.training.fit import save_model

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    save_model(ensemble, out / "model.keras")
    report = {"method": args.method, "members": args.model, "weights": ensemble.member_weights, "test": rows}
    if stacked is not None:
        report["stacker"] = stacked
    (out / "ensemble.json").write_text(json.dumps(report, indent=2))
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_table(rows, columns)
        print(f"model: {out / 'model.keras'}  (export it with: ecomrec-tf export --model {out})")


def member_rows(args, outputs: list[dict], ensemble, score) -> dict[str, dict]:
    """The test metrics of each member and of the ensemble (`score(outputs)`), by name."""
    rows = {
        f"member {i + 1}: {path}": score(output) for i, (path, output) in enumerate(zip(args.model, outputs))
    }
    return rows | {f"ensemble ({args.method})": score(ensemble.combine(outputs))}


def intent(args) -> None:
    import numpy as np

    from ecomrec_tf.data.readers import label_ids, read_intent_file
    from ecomrec_tf.evaluation.classification import classification_metrics
    from ecomrec_tf.training.ensemble import fit_stacking

    members, ensemble = members_and_ensemble(args)

    def predict(path):
        texts, labels = read_intent_file(path)
        return [m.predict(texts, verbose=0) for m in members], label_ids(labels, ensemble.labels, path)

    stacked = None
    if args.method == "stacking":
        if not args.valid:
            raise ConfigError(
                "ensemble intent --method stacking: give --valid, the data to fit the stacker on"
            )
        stacked = fit_stacking(ensemble, *predict(args.valid))
    outputs, truth = predict(args.test)

    def score(output):
        found = classification_metrics(truth, np.asarray(output["probabilities"]).argmax(-1), ensemble.labels)
        return {"accuracy": found["accuracy"], "macro_f1": found["macro_f1"]}

    finish(args, ensemble, member_rows(args, outputs, ensemble, score), ["accuracy", "macro_f1"], stacked)


def purchase(args) -> None:
    import numpy as np

    from ecomrec_tf.data.purchase_data import VectorCache, column_chunks, read_purchase_data
    from ecomrec_tf.evaluation.purchase import predict_probabilities, purchase_metrics
    from ecomrec_tf.training.ensemble import fit_stacking

    members, ensemble = members_and_ensemble(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".examples-", dir=out) as work_dir:
        data = read_purchase_data(
            args.items, args.events, args.valid_events, args.test_events, work_dir=work_dir,
            history_size=run_setting(args.model[0], "history_size", 10),
        )  # fmt: skip
        caches = [VectorCache(m, data.items, data.queries(), progress=False) for m in members]

        def predict(split):
            examples = data.scored(split)
            labels = np.concatenate([c["label"] for c in column_chunks(examples, data.items)])
            outputs = []
            for member, cache in zip(members, caches):
                p = np.clip(predict_probabilities(member, cache, examples), 1e-7, 1 - 1e-7)
                outputs.append({"purchase_probability": p, "logit": np.log(p) - np.log1p(-p)})
            return outputs, labels

        stacked = None
        if args.method == "stacking":
            stacked = fit_stacking(ensemble, *predict("valid"))
        split = "test" if data.scored("test") else "valid"
        outputs, labels = predict(split)

    def score(output):
        found = purchase_metrics(labels, np.asarray(output["purchase_probability"]))
        return {name: found[name] for name in ("auc", "log_loss", "ece")}

    finish(args, ensemble, member_rows(args, outputs, ensemble, score), ["auc", "log_loss", "ece"], stacked)


def register(commands) -> None:
    group = subcommands(
        commands.add_parser(
            "ensemble", formatter_class=HelpFormatter, help="several trained models of one head as one"
        ),
        "head",
    )

    def shared(parser) -> None:
        parser.add_argument(
            "--model", action="append", required=True, help="a member's model.keras or run folder (2 or more)"
        )
        parser.add_argument(
            "--method",
            choices=["average", "stacking"],
            default="average",
            help="'average': the weighted mean of the members' probabilities; 'stacking': their scores "
            "weighed by one weight per member, fitted on the validation data",
        )
        parser.add_argument(
            "--weights", type=float, nargs="+", default=None, help="the members' weights in the average"
        )
        add(parser, "out", "json", out={"help": "folder for model.keras and ensemble.json"})

    parser = command(group, "intent", "ensemble intent models: test metrics of members and ensemble", intent)
    shared(parser)
    add(parser, "valid", valid={"required": False, "help": "labelled file to fit the stacker on (stacking)"})
    parser.add_argument("--test", required=True, help="labelled file to report on")
    parser = command(
        group, "purchase", "ensemble purchase models: test metrics of members and ensemble", purchase
    )
    shared(parser)
    add(parser, "items", "events", events={"help": "the training events (histories and counts)"})
    parser.add_argument("--valid-events", required=True, help="later events: fit the stacker on their views")
    parser.add_argument(
        "--test-events", default=None, help="still later events to report on (default: valid)"
    )
