"""The experiment record is traceable: every row of eval/results.csv carries the command that made it (a valid recipe
with valid overrides that set the row's point), a tuner trial's row is the trial its search logged, a proxy score
beside a full run is the one the tuner logged for that point (not a number typed in), each manifest entry has its
rows, and the README's generated tables are what eval/record.py renders from the rows."""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
import sys
from pathlib import Path

import pytest
import yaml

from fixnorm_zoo.recipe import load_recipe, parse_overrides
from fixnorm_zoo.tune.strategies import param_key

ROOT = Path(__file__).resolve().parent.parent


def _load(name: str):
    """A fresh copy of one of eval/record.py's modules (``record_rows``, ``record_runner``, ``record_tables``)."""
    sys.path.insert(0, str(ROOT / "eval"))
    try:
        spec = importlib.util.spec_from_file_location(name, ROOT / "eval" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(ROOT / "eval"))


rows_mod = _load("record_rows")
tables_mod = _load("record_tables")
ROWS = rows_mod.read_rows()


def _command_sets(command: str, verb: str) -> tuple[str, dict[str, str]]:
    argv = shlex.split(command.split("  #")[0])
    assert argv[0].startswith("OMP_NUM_THREADS=") and argv[1:3] == ["fixnorm-zoo", verb], command
    sets = [argv[i + 1] for i, a in enumerate(argv) if a == "--set"]
    return argv[3], dict(s.split("=", 1) for s in sets)


def test_every_row_has_the_schema_and_a_command() -> None:
    assert ROWS, "eval/results.csv has no rows"
    ids = [r["id"] for r in ROWS]
    assert len(ids) == len(set(ids)), "duplicate ids"
    for r in ROWS:
        assert list(r) == list(rows_mod.COLUMNS)
        assert r["kind"] in ("train", "trial") and r["command"] and r["split"], r["id"]
        if r["status"] == "ok":
            assert 0 < float(r["top1"]) <= 100 and float(r["train_min"]) > 0, r["id"]


@pytest.mark.parametrize("row", [r for r in ROWS if r["kind"] == "train"], ids=lambda r: r["id"])
def test_train_rows_command_sets_the_rows_point(row: dict[str, str]) -> None:
    recipe_name, sets = _command_sets(row["command"], "train")
    assert recipe_name == row["recipe"]
    recipe = load_recipe(recipe_name, overrides=parse_overrides([f"{k}={v}" for k, v in sets.items()]))
    assert (
        recipe.seed == int(row["seed"])
        and recipe.epochs == int(row["epochs"])
        and recipe.method == row["method"]
    )
    for item in filter(None, row["set"].split(";")):
        knob, value = item.split("=", 1)
        assert sets[knob] == value, (row["id"], knob)
    if row["log"]:
        history = [json.loads(x) for x in (ROOT / row["log"]).read_text().splitlines()]
        assert len(history) == recipe.epochs
        # each target's minutes (or "not reached") is the log's, at the first epoch that reached it
        for target in rows_mod.TARGETS:
            minutes, epoch = rows_mod.minutes_to(history, target), rows_mod.epochs_to(history, target)
            assert (minutes is None) == (epoch is None) == (not row[f"min_to_{target}"]), (row["id"], target)
            if minutes is not None:
                assert minutes == pytest.approx(float(row[f"min_to_{target}"]), abs=0.006)
                before = max((h["top1"] for h in history[: epoch - 1]), default=0)
                assert history[epoch - 1]["top1"] >= target > before
                assert minutes * 60 == pytest.approx(sum(h["epoch_train_s"] for h in history[:epoch]))
    if row["ref_epoch_s"]:
        # a timed row: its cost in reference epochs is its seconds over a yardstick measured in the same session
        # (logged in eval/yardstick.csv), and each target's reference epochs are the log's
        yardsticks = {float(y["ref_epoch_s"]) for y in rows_mod.read_rows(rows_mod.YARDSTICK_LOG)}
        ref = float(row["ref_epoch_s"])
        assert ref in yardsticks, row["id"]
        assert float(row["ref_epochs"]) == pytest.approx(float(row["train_s"]) / ref, abs=0.006)
        assert row["cpu"] and row["code_revision"], row["id"]
        history = [json.loads(x) for x in (ROOT / row["log"]).read_text().splitlines()]
        for target in rows_mod.TARGETS:
            seconds = rows_mod.seconds_to(history, target)
            assert (seconds is None) == (not row[f"ref_epochs_to_{target}"]), (row["id"], target)
            if seconds is not None:
                assert seconds / ref == pytest.approx(float(row[f"ref_epochs_to_{target}"]), abs=0.006)


def test_trial_rows_are_the_logged_trials_and_proxy_scores_are_logged_ones() -> None:
    trials = {r["id"]: r for r in ROWS if r["kind"] == "trial"}
    for log in sorted((ROOT / "eval" / "tuner").glob("*_trials.jsonl")):
        search = log.name.removesuffix("_trials.jsonl")
        records = [json.loads(x) for x in log.read_text().splitlines()[1:] if x.strip()]
        assert records, log
        for rec in records:
            row = trials[f"{search}/{rec['trial']}"]
            assert row["status"] == rec["status"] and row["top1"] == (
                "" if rec["score"] is None else str(rec["score"])
            )
            assert _command_sets(row["command"], "tune")[0] == row["recipe"]
    for r in ROWS:
        if r["kind"] == "train" and r["proxy_top1"]:
            manifest = {
                e["id"]: e for e in yaml.safe_load((ROOT / "eval" / "manifest.yaml").read_text())["runs"]
            }
            entry = manifest[r["id"]]
            point = {k: float(v) for k, v in entry["set"].items() if k in ("fc_norm", "lr", "weight_decay")}
            assert trials[f"{entry['proxy_from']}/{param_key(point)}"]["top1"] == r["proxy_top1"], r["id"]


def test_every_manifest_entry_has_its_rows() -> None:
    manifest = yaml.safe_load((ROOT / "eval" / "manifest.yaml").read_text())
    ids = {r["id"] for r in ROWS}
    missing = [e["id"] for e in manifest["runs"] if e["id"] not in ids]
    missing += [t["id"] for t in manifest["tunes"] if not any(i.startswith(t["id"] + "/") for i in ids)]
    assert not missing, f"manifest entries without rows (run eval/record.py run): {missing}"


def test_readme_tables_are_generated_from_the_rows() -> None:
    """Every generated table sits in exactly one page (the README or a docs page it links), and each page is what
    eval/record.py renders from the rows."""
    texts = {p.relative_to(ROOT).as_posix(): p.read_text() for p in rows_mod.PAGES}
    placed = sorted(m.group(2) for t in texts.values() for m in tables_mod.BLOCK.finditer(t))
    assert placed == sorted(tables_mod.TABLES), placed
    for name, text in texts.items():
        assert tables_mod.render_readme(text, ROWS) == text, (
            f"{name}: run .venv/bin/python eval/record.py readme"
        )
    for name, text in texts.items():  # every page's relative links (pages, figures, files) resolve
        for link in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
            if not link.startswith(("http://", "https://")):
                target = (ROOT / name).parent / link
                assert target.exists(), f"{name} links {link}, which does not exist"


FAKE_TUNER = """
import json, sys
from pathlib import Path
argv = sys.argv[1:]
n, out = int(argv[argv.index("--trials") + 1]), Path(argv[argv.index("--output") + 1])
log = out / "trials.jsonl"
lines = log.read_text().splitlines()
stop = int(Path(sys.argv[0]).with_name("stop").read_text())
k = len(lines) - 1
while k < min(n, stop):
    lines.append(json.dumps({"trial": f"lr={k}", "params": {"lr": k}, "status": "ok", "score": 90 + k,
                             "top5": 99, "time_s": 60}))
    k += 1
log.write_text("\\n".join(lines) + "\\n")
(out / "trials.png").write_bytes(b"png")
(out / "best.yaml").write_text("lr: 0")
with open(Path(sys.argv[0]).with_name("calls"), "a") as f:
    f.write(f"{n}\\n")
"""


def test_a_tune_entry_continues_trial_by_trial_from_its_kept_log(tmp_path, monkeypatch) -> None:
    """record.py runs a search one trial per tuner call and records each trial as it ends, so a stop mid-search
    loses at most one trial; trials in the kept log but not yet in the rows are recorded first; a search that
    converges before its budget is not called again and again."""
    rec = _load("record_runner")
    rows: list[dict] = []
    monkeypatch.setattr(rec, "read_rows", lambda path=None: list(rows))
    monkeypatch.setattr(rec, "append_rows", lambda new, path=None: rows.extend(new))
    monkeypatch.setattr(rec, "ROOT", tmp_path)
    monkeypatch.setattr(rec, "TUNER", tmp_path / "eval" / "tuner")
    script = tmp_path / "fake" / "tuner.py"
    script.parent.mkdir()
    script.write_text(FAKE_TUNER)
    monkeypatch.setattr(rec, "CLI", [__import__("sys").executable, str(script)])
    (script.parent / "stop").write_text("99")
    rec.TUNER.mkdir(parents=True)
    meta = {"meta": {"method": "wd", "seed": 0, "proxy": {"epochs": 10, "holdout": 10000}}}
    first = {"trial": "lr=0", "params": {"lr": 0}, "status": "ok", "score": 90, "top5": 99, "time_s": 60}
    (rec.TUNER / "t_trials.jsonl").write_text(json.dumps(meta) + "\n" + json.dumps(first) + "\n")
    entry = {"id": "t", "recipe": "fashion_mnist/resnet9s_wd", "args": "--strategy grid --trials 3"}

    rec.run_tune(entry, threads=1)
    assert [r["id"] for r in rows] == ["t/lr=0", "t/lr=1", "t/lr=2"]
    assert (script.parent / "calls").read_text().split() == ["2", "3"]  # one new trial per call
    assert json.loads((rec.TUNER / "t_trials.jsonl").read_text().splitlines()[-1])["trial"] == "lr=2"

    (script.parent / "calls").unlink()
    rec.run_tune(entry, threads=1)  # complete: nothing runs, nothing is recorded twice
    assert not (script.parent / "calls").exists() and len(rows) == 3

    (script.parent / "stop").write_text("4")  # this search ends after 4 trials of a budget of 8
    rec.run_tune({**entry, "args": "--strategy grid --trials 8"}, threads=1)
    assert len(rows) == 4 and (script.parent / "calls").read_text().split() == ["4", "5"]
