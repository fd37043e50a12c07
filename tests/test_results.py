"""Recorded results are traceable: each full-run row in eval/tuner/ carries the command that made it (a valid
recipe with valid overrides that set the row's point), and the proxy score beside it is the one the tuner's trial
log recorded for that point, not a number typed in."""

from __future__ import annotations

import csv
import json
import shlex
from pathlib import Path

import pytest

from fixnorm_zoo.recipe import load_recipe, parse_overrides
from fixnorm_zoo.tuning import param_key

TUNER = Path(__file__).resolve().parent.parent / "eval" / "tuner"


def _proxy_scores(log: Path) -> dict[str, float]:
    records = [json.loads(x) for x in log.read_text().splitlines()[1:] if x.strip()]
    return {r["trial"]: r["score"] for r in records if r["status"] == "ok"}


@pytest.mark.parametrize(
    ("csv_name", "trial_log"),
    [("full_runs.csv", None), ("grid_full_runs.csv", "grid_resnet18_fixnorm_trials.jsonl")],
)
def test_full_run_rows_carry_their_command_and_the_logged_proxy(csv_name: str, trial_log: str | None) -> None:
    with open(TUNER / csv_name) as f:
        rows = list(csv.DictReader(f))
    assert rows, f"{csv_name} has no rows"
    for row in rows:
        argv = shlex.split(row["command"])
        assert argv[:3] == ["fixnorm-zoo", "train", f"fashion_mnist/{row['recipe']}"], row["command"]
        assert set(argv[3::2]) == {"--set"}, row["command"]
        sets = argv[4::2]
        # the recipe and every override are valid (load_recipe refuses unknown fields and bad values)
        recipe = load_recipe(f"fashion_mnist/{row['recipe']}", overrides=parse_overrides(sets))
        point = {k: float(v) for k, v in (kv.split("=") for kv in row["point"].split(","))}
        for knob, value in point.items():
            assert float(getattr(recipe, knob)) == value, (row["point"], row["command"])
        logged = _proxy_scores(TUNER / (trial_log or f"{row['recipe']}_trials.jsonl"))
        expected = logged.get(param_key(point))
        if trial_log is not None:
            assert expected is not None, f"{row['point']} is not a point of the grid {trial_log}"
        assert row["proxy_top1"] == ("" if expected is None else str(expected)), row["point"]
        assert 0 < float(row["top1"]) <= 100 and float(row["train_time_s"]) > 0
