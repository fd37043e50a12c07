"""The experiment record: one manifest of runs (eval/manifest.yaml), one table of measured rows (eval/results.csv),
and the README's tables and figures generated from those rows.

    .venv/bin/python eval/record.py run [--only ID ...]   # run every manifest entry that has no row yet
    .venv/bin/python eval/record.py readme                # rewrite the README's generated tables, redraw the figures
    .venv/bin/python eval/record.py readme --check        # exit 1 if the README's tables differ from the rows

A row is one measurement with the command that made it. ``kind=train``: a full training run scored on the 10,000
Fashion-MNIST test images (single view, as timm's validate.py; ``top1_flip`` with flip TTA), its training-loop
minutes (summed per-epoch wall time, eval excluded) and, per target accuracy, the minutes at the first epoch that
reached it. ``kind=trial``: one trial of a ``fixnorm-zoo tune`` search, scored on held-out training images
(``split``). Runs are resumable: a killed training continues from its last checkpoint, a killed search from its
trial log; a finished row is never re-run.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fixnorm_zoo.engine.rundir import RunDir  # noqa: E402
from fixnorm_zoo.tune.strategies import param_key  # noqa: E402
from fixnorm_zoo.utils.atomic import append_csv_rows, atomic_write_text  # noqa: E402

MANIFEST = ROOT / "eval" / "manifest.yaml"
RESULTS = ROOT / "eval" / "results.csv"
LOGS = ROOT / "eval" / "logs"
TUNER = ROOT / "eval" / "tuner"
README = ROOT / "README.md"
PAGES = (README, *sorted((ROOT / "docs").glob("*.md")))
"""The pages whose ``record:`` blocks are generated: the README and the docs pages it links."""
TARGETS = (93, 94, 95)
COLUMNS = (
    "id",
    "group",
    "kind",
    "recipe",
    "method",
    "seed",
    "set",
    "split",
    "epochs",
    "threads",
    "train_min",
    "top1",
    "top5",
    "top1_flip",
    *(f"min_to_{t}" for t in TARGETS),
    "proxy_top1",
    "status",
    "command",
    "run_dir",
    "log",
    # the budget unit that survives a change of machine: training seconds / the yardstick's reference-epoch
    # seconds, measured in the same `record.py run` invocation, alone, before the runs
    "train_s",
    "ref_epoch_s",
    "ref_epochs",
    *(f"ref_epochs_to_{t}" for t in TARGETS),
    "cpu",
    "code_revision",
)
YARDSTICK = Path(
    os.environ.get("FIXNORM_YARDSTICK", ROOT.parent / "shared" / "yardstick" / "reference_epoch.py")
)
YARDSTICK_LOG = ROOT / "eval" / "yardstick.csv"
YARDSTICK_COLUMNS = ("measured_at", "cpu", "threads", "ref_epoch_s", "output")
CLI = [sys.executable, "-m", "fixnorm_zoo.cli"]
PUBLIC = {"resnet18": ("ResNet18", 94.9), "mobilenetv2_050": ("MobileNet", 95.0)}
METHOD_LABEL = {"fixnorm": "FixNorm", "wd": "weight decay"}


# -- the table ----------------------------------------------------------------------------------------------------


def read_rows(path: Path = RESULTS) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def append_rows(new: list[dict[str, Any]], path: Path = RESULTS) -> None:
    """Append rows under a lock, rewriting the file atomically (a kill never leaves half a row)."""
    append_csv_rows(path, new, columns=COLUMNS)


def minutes_to(history: list[dict[str, Any]], target: float) -> float | None:
    """Training-loop minutes at the end of the first epoch whose test top-1 reached ``target``, else None."""
    total = 0.0
    for h in history:
        total += h["epoch_train_s"]
        if h["top1"] >= target:
            return total / 60
    return None


def seconds_to(history: list[dict[str, Any]], target: float) -> float | None:
    """Training-loop seconds at the end of the first epoch whose test top-1 reached ``target``, else None."""
    minutes = minutes_to(history, target)
    return None if minutes is None else minutes * 60


def epochs_to(history: list[dict[str, Any]], target: float) -> int | None:
    """The first epoch whose test top-1 reached ``target``, else None: the machine-independent twin of
    :func:`minutes_to` (the same computation ran at 811 to 1136 img/s on this machine on different days)."""
    return next((h["epoch"] for h in history if h["top1"] >= target), None)


# -- the yardstick ----------------------------------------------------------------------------------------------


def measure_yardstick(*, threads: int) -> dict[str, Any]:
    """Run ``../shared/yardstick/reference_epoch.py`` (alone: call it before the runs) and log its line to
    eval/yardstick.csv; returns ``{"ref_epoch_s", "cpu", ...}`` for the rows timed in this invocation."""
    import datetime

    from fixnorm_zoo.utils.provenance import cpu_model

    if not YARDSTICK.is_file():
        raise SystemExit(
            f"error: the yardstick {YARDSTICK} is missing: timed rows need it (set FIXNORM_YARDSTICK to its path)"
        )
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    out = subprocess.run(
        [sys.executable, str(YARDSTICK), "--threads", str(threads)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    ).stdout.strip()
    m = re.match(r"reference_epoch_s ([0-9.]+)", out)
    if not m:
        raise SystemExit(f"error: the yardstick printed {out!r}, not 'reference_epoch_s SECONDS ...'")
    measured = {
        "measured_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "cpu": cpu_model(),
        "threads": threads,
        "ref_epoch_s": float(m.group(1)),
        "output": out,
    }
    print(f"yardstick: {out}", flush=True)
    append_csv_rows(YARDSTICK_LOG, [measured], columns=YARDSTICK_COLUMNS)
    return measured


def budget_columns(
    history: list[dict[str, Any]], train_s: float, yardstick: dict[str, Any]
) -> dict[str, Any]:
    """A timed row's cost and time to each target in reference epochs (seconds / the yardstick's seconds)."""
    ref = yardstick["ref_epoch_s"]
    row: dict[str, Any] = {
        "train_s": round(train_s, 1),
        "ref_epoch_s": ref,
        "ref_epochs": round(train_s / ref, 2),
        "cpu": yardstick["cpu"],
    }
    for t in TARGETS:
        s = seconds_to(history, t)
        row[f"ref_epochs_to_{t}"] = "" if s is None else round(s / ref, 2)
    return row


# -- running ------------------------------------------------------------------------------------------------------


def _sets(entry: dict[str, Any]) -> list[str]:
    values = {"seed": entry.get("seed", 0), **(entry.get("set") or {})}
    return [f"{k}={json.dumps(v) if isinstance(v, list | dict) else v}" for k, v in values.items()]


def _eval(run_dir: str, *, tta: str, results_csv: str | None = None) -> dict[str, str]:
    extra = ["--results-csv", results_csv] if results_csv else []
    r = subprocess.run(
        [*CLI, "eval", run_dir, "--data", "fashion_mnist", "--tta", tta, *extra],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    head, values = r.stdout.splitlines()[:2]
    return dict(zip(head.split(","), values.split(","), strict=True))


def run_train(entry: dict[str, Any], *, threads: int, yardstick=None) -> dict[str, Any]:
    """Train (or resume) one manifest run alone on ``threads`` threads, evaluate it, and return its row.

    ``yardstick``: a callable measuring the yardstick, called right before the run trains; a run resumed from an earlier session's checkpoint is not timed in reference epochs,
    since part of its seconds ran on another machine."""
    run_dir = entry.get("run_dir") or f"runs/record/{entry['id']}"
    args = ["train", entry["recipe"], *(a for s in _sets(entry) for a in ("--set", s)), "--output", run_dir]
    command = f"OMP_NUM_THREADS={threads} fixnorm-zoo " + shlex.join(args)
    run = RunDir(ROOT / run_dir)
    measured = None
    if not run.is_finished():
        resume = ["--resume"] if run.latest_checkpoint() is not None else []
        if not resume and yardstick is not None:
            measured = yardstick()
        print(f"$ {command}", flush=True)
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        subprocess.run([*CLI, *args, "--no-progress", *resume], cwd=ROOT, env=env, check=True)
    summary, history = run.read_summary(), run.read_history()
    LOGS.mkdir(exist_ok=True)
    log = LOGS / f"{entry['id']}.jsonl"
    shutil.copyfile(run.log_file, log)
    single = _eval(run_dir, tta="none", results_csv=entry.get("results_csv"))
    flip = _eval(run_dir, tta="flip")
    row = {
        "id": entry["id"],
        "group": entry["group"],
        "kind": "train",
        "recipe": entry["recipe"],
        "method": summary["method"],
        "seed": entry.get("seed", 0),
        "set": ";".join(s for s in _sets(entry) if not s.startswith("seed=")),
        "split": summary["eval_split"],
        "epochs": summary["epochs"],
        "threads": threads,
        "train_min": round(summary["train_time_s"] / 60, 2),
        "top1": single["top1"],
        "top5": single["top5"],
        "top1_flip": flip["top1"],
        "status": "ok",
        "command": command,
        "run_dir": run_dir,
        "log": str(log.relative_to(ROOT)),
    }
    for t in TARGETS:
        m = minutes_to(history, t)
        row[f"min_to_{t}"] = "" if m is None else round(m, 2)
    provenance = summary.get("provenance") or {}
    row["code_revision"] = provenance.get("code_revision") or ""
    if measured is not None:
        row.update(budget_columns(history, summary["train_time_s"], measured))
    if entry.get("proxy_from"):
        point = param_key(
            {
                k: float(v)
                for k, v in (entry.get("set") or {}).items()
                if k in ("fc_norm", "lr", "weight_decay")
            }
        )
        trial = next((r for r in read_rows() if r["id"] == f"{entry['proxy_from']}/{point}"), None)
        row["proxy_top1"] = trial["top1"] if trial else ""
    return row


def tune_budget(entry: dict[str, Any]) -> int:
    """The entry's trial budget (its ``--trials``; the CLI's default 10 when absent)."""
    args = shlex.split(entry["args"])
    return int(args[args.index("--trials") + 1]) if "--trials" in args else 10


def tune_rows(
    entry: dict[str, Any], lines: list[dict[str, Any]], *, command: str, threads: int
) -> list[dict]:
    """One row per finished trial of a trial log (its first line is the meta)."""
    meta = lines[0]["meta"]
    rows = []
    for r in lines[1:]:
        rows.append(
            {
                "id": f"{entry['id']}/{r['trial']}",
                "group": "tune",
                "kind": "trial",
                "recipe": entry["recipe"],
                "method": meta["method"],
                "seed": meta["seed"],
                "set": r["trial"].replace(",", ";"),
                "split": f"train[-{meta['proxy'].get('holdout', 10000)}:]",
                "epochs": meta["proxy"]["epochs"],
                "threads": threads,
                "train_min": round(r["time_s"] / 60, 2),
                "top1": "" if r.get("score") is None else r["score"],
                "top5": r.get("top5") or "",
                "status": r["status"],
                "command": command,
                "run_dir": f"runs/tune/{entry['id']}/runs/{r['trial'].replace(',', '_')}",
            }
        )
    return rows


def _tune_command(entry: dict[str, Any], *, threads: int) -> tuple[Path, list[str], str]:
    out = ROOT / "runs" / "tune" / entry["id"]
    args = ["tune", entry["recipe"], *shlex.split(entry["args"]), "--output", str(out.relative_to(ROOT))]
    return out, args, f"OMP_NUM_THREADS={threads} fixnorm-zoo " + shlex.join(args)


def sync_tune(entry: dict[str, Any], *, threads: int, log: Path | None = None) -> int:
    """Append the rows of ``log``'s trials (default: the search's running log, else its kept copy in eval/tuner/)
    that the results file lacks; returns how many trials of the entry are recorded."""
    out, _, command = _tune_command(entry, threads=threads)
    log = log or (
        out / "trials.jsonl" if (out / "trials.jsonl").is_file() else TUNER / f"{entry['id']}_trials.jsonl"
    )
    lines = [json.loads(x) for x in log.read_text().splitlines() if x.strip()] if log.is_file() else []
    have = {r["id"] for r in read_rows()}
    new = (
        [r for r in tune_rows(entry, lines, command=command, threads=threads) if r["id"] not in have]
        if lines
        else []
    )
    append_rows(new)
    return sum(i.startswith(entry["id"] + "/") for i in have) + len(new)


def run_tune(entry: dict[str, Any], *, threads: int) -> None:
    """Run (or continue) one tuner search, one trial per call of the tuner: after each, its log, plot and best.yaml
    are copied to eval/tuner/ and its row appended, so a session that stops mid-search loses at most the running
    trial and the next session continues from the kept log (replayed: no trial runs twice). Trials already in the
    kept log but not yet in the results file (a search extended by hand, say) get their rows first."""
    out, args, command = _tune_command(entry, threads=threads)
    kept = TUNER / f"{entry['id']}_trials.jsonl"
    if kept.is_file() and not (out / "trials.jsonl").is_file():
        out.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(kept, out / "trials.jsonl")
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    budget = tune_budget(entry)
    done = sync_tune(entry, threads=threads)
    print(f"$ {command}  ({done} of {budget} trials recorded)", flush=True)
    for n in range(done + 1, budget + 1):  # --trials n: what the log holds replays, the rest up to n runs
        per_call = [a if i == 0 or args[i - 1] != "--trials" else str(n) for i, a in enumerate(args)]
        if "--trials" not in per_call:
            per_call[2:2] = ["--trials", str(n)]
        subprocess.run([*CLI, *per_call, "--no-progress"], cwd=ROOT, env=env, check=True)
        for name in ("trials.jsonl", "trials.png", "best.yaml"):
            shutil.copyfile(out / name, TUNER / f"{entry['id']}_{name}")
        done = sync_tune(entry, threads=threads)
        if done < n:  # the search ended before spending n trials: it has converged
            break


def run(only: list[str] | None) -> None:
    manifest = yaml.safe_load(MANIFEST.read_text())
    default_threads = int(manifest.get("threads", 2))

    def yardstick_for(threads: int):
        # right before each timed run: the machine's speed drifts within an hour (the yardstick read 30.7 and
        # 47.6 s in one session), so a figure measured once per invocation misprices the later runs
        return lambda: measure_yardstick(threads=threads)

    for entry in manifest.get("tunes") or []:
        done = sum(r["id"].startswith(entry["id"] + "/") for r in read_rows()) >= tune_budget(entry)
        if done or (only and entry["id"] not in only):
            continue
        run_tune(entry, threads=int(entry.get("threads", default_threads)))
    for entry in manifest.get("runs") or []:
        done = any(r["id"] == entry["id"] for r in read_rows())
        if done or (only and entry["id"] not in only):
            continue
        threads = int(entry.get("threads", default_threads))
        row = run_train(entry, threads=threads, yardstick=yardstick_for(threads))
        append_rows([row])
        print(json.dumps(row), flush=True)


# -- the README's tables and figures --------------------------------------------------------------------------------


def _stat(values: list[float]) -> str:
    if not values:
        return "-"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.2f} ± {sd:.2f}"


def families_table(rows: list[dict[str, str]]) -> str:
    """The 10-epoch families: test top-1 mean ± std over seeds per recipe, minutes per run, the public table."""
    groups: dict[tuple[str, str], list[dict[str, str]]] = defaultdict(list)
    for r in rows:
        if r["group"] == "families":
            groups[(Path(r["recipe"]).name.rsplit("_", 1)[0], r["method"])].append(r)
    lines = [
        "| family (recipe) | method | seeds | test top-1 % (mean ± std) | per seed | minutes per run | public table |",
        "|---|---|---|---|---|---|---|",
    ]
    for (family, method), rs in sorted(groups.items()):
        top1 = [float(r["top1"]) for r in rs]
        label, public = PUBLIC.get(family, (None, None))
        lines.append(
            f"| {family} (`{rs[0]['recipe']}`) | {method} | {len(rs)} | {_stat(top1)} | "
            f"{', '.join(f'{t:.2f}' for t in top1)} | {statistics.mean(float(r['train_min']) for r in rs):.1f} | "
            f"{f'{label} {public}' if public else ''} |"
        )
    return "\n".join(lines)


def fast_table(rows: list[dict[str, str]]) -> str:
    """Time to accuracy: per method and epoch budget, mean ± std over seeds of top-1 (single view and flip; each
    seed's single view too, so no per-seed number is typed into the README), the training minutes, and the
    minutes to each target (with how many seeds reached it, and at which epochs)."""
    groups: dict[tuple[int, str], list[dict[str, str]]] = defaultdict(list)
    for r in rows:
        if r["group"] == "fast":
            groups[(int(r["epochs"]), r["method"])].append(r)
    head = [
        "epochs",
        "method",
        "seeds",
        "test top-1 %",
        "per seed",
        "flip TTA top-1 %",
        "train minutes",
        *(f"minutes to {t}%" for t in TARGETS),
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for (epochs, method), rs in sorted(groups.items()):
        histories = [_history(r) for r in rs]  # each log read once, for every target
        cells = [
            str(epochs),
            method,
            str(len(rs)),
            _stat([float(r["top1"]) for r in rs]),
            ", ".join(f"{float(r['top1']):.2f}" for r in sorted(rs, key=lambda r: int(r["seed"]))),
            _stat([float(r["top1_flip"]) for r in rs]),
            _stat([float(r["train_min"]) for r in rs]),
        ]
        for t in TARGETS:
            reached = [float(r[f"min_to_{t}"]) for r in rs if r[f"min_to_{t}"]]
            if not reached:
                cells.append(f"not reached (0/{len(rs)})")
                continue
            at_epochs = sorted(e for h in histories if (e := epochs_to(h, t)) is not None)
            span = (
                f"epoch {at_epochs[0]}"
                if len(set(at_epochs)) == 1
                else f"epochs {at_epochs[0]}-{at_epochs[-1]}"
            )
            cells.append(f"{_stat(reached)} ({len(reached)}/{len(rs)} seeds; {span})")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


BASELINE_GROUPS = {
    "baseline": "tuned on full runs",
    "baseline_default": "common default",
    "baseline_e30": "tuned on full runs, 30 epochs",
}
LONG_SCHEDULE = {30: {"baseline": "baseline_e30"}}
"""Per budget (reference epochs), the group whose longer schedule stands in for a 10-epoch group's column: a
30-reference-epoch target is judged on the 30-epoch runs, not on 10-epoch runs that end long before it."""
BUDGET_TARGETS = ((94, 5), (94, 10), (95, 30))
"""Issue 20's targets: (test top-1 %, reference epochs), the first the stretch goal."""


def _ref_curve(row: dict[str, str], history: list[dict[str, Any]]) -> list[tuple[float, float]]:
    """(cumulative reference epochs, test top-1) at the end of each epoch of a timed row."""
    ref, total, out = float(row["ref_epoch_s"]), 0.0, []
    for h in history:
        total += h["epoch_train_s"]
        out.append((total / ref, h["top1"]))
    return out


def _baseline_groups(rows: list[dict[str, str]]) -> dict[tuple[str, str], list[dict[str, str]]]:
    groups: dict[tuple[str, str], list[dict[str, str]]] = defaultdict(list)
    for r in rows:
        if r["group"] in BASELINE_GROUPS and r["ref_epoch_s"]:
            groups[(r["method"], r["group"])].append(r)
    return dict(sorted(groups.items(), key=lambda kv: (kv[0][0] != "fixnorm", kv[0][1])))


def baseline_table(rows: list[dict[str, str]]) -> str:
    """The republished pair and weight decay's default, timed in reference epochs: top-1 (single view; flip TTA
    as an extra column), each run's cost, and the reference epochs at which each target was first reached."""
    head = [
        "method",
        "knobs",
        "seeds",
        "test top-1 %",
        "per seed",
        "flip TTA top-1 %",
        "ref. epochs per run",
        *(f"ref. epochs to {t}%" for t in TARGETS),
        "minutes per run (CPU)",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for (method, group), rs in _baseline_groups(rows).items():
        rs = sorted(rs, key=lambda r: int(r["seed"]))
        cells = [
            METHOD_LABEL.get(method, method),
            f"{BASELINE_GROUPS[group]}" + (f" ({rs[0]['set'].replace(';', ', ')})" if rs[0]["set"] else ""),
            str(len(rs)),
            _stat([float(r["top1"]) for r in rs]),
            ", ".join(f"{float(r['top1']):.2f}" for r in rs),
            _stat([float(r["top1_flip"]) for r in rs]),
            _stat([float(r["ref_epochs"]) for r in rs]),
        ]
        for t in TARGETS:
            reached = [float(r[f"ref_epochs_to_{t}"]) for r in rs if r[f"ref_epochs_to_{t}"]]
            cells.append(
                f"{_stat(reached)} ({len(reached)}/{len(rs)})" if reached else f"not reached (0/{len(rs)})"
            )
        cpus = sorted({r["cpu"] for r in rs})
        cells.append(f"{_stat([float(r['train_min']) for r in rs])} ({'; '.join(cpus)})")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def targets_table(rows: list[dict[str, str]]) -> str:
    """Each target (top-1 within a reference-epoch budget) per method: reached (the reference epochs, mean ± std
    over seeds) or missed (by how many points, at the last epoch inside the budget), from the baseline rows."""
    groups = _baseline_groups(rows)
    longer = {g for by_group in LONG_SCHEDULE.values() for g in by_group.values()}
    columns = [key for key in groups if key[1] not in longer]
    labels = [f"{METHOD_LABEL.get(m, m)} ({BASELINE_GROUPS[g]})" for m, g in columns]
    lines = ["| target | " + " | ".join(labels) + " |", "|---|" + "---|" * len(labels)]
    for target, budget in BUDGET_TARGETS:
        cells = [f"**{target}% within {budget} ref. epochs**"]
        for method, group in columns:
            long_rows = groups.get((method, LONG_SCHEDULE.get(budget, {}).get(group)))
            rs = long_rows or groups[(method, group)]
            schedule = f" ({rs[0]['epochs']}-epoch runs)" if long_rows else ""
            curves = [_ref_curve(r, _history(r)) for r in rs]
            hit = [next((x for x, top1 in c if top1 >= target), None) for c in curves]
            inside = [h for h in hit if h is not None and h <= budget]
            at_budget = [max((top1 for x, top1 in c if x <= budget), default=None) for c in curves]
            if len(inside) == len(rs):
                cells.append(f"reached at {_stat(inside)} ({len(rs)}/{len(rs)} seeds{schedule})")
                continue
            ends = max(c[-1][0] for c in curves)
            scored = [a for a in at_budget if a is not None]
            if not scored:
                cells.append(f"no epoch ends within {budget} (runs cost {ends:.1f})")
                continue
            mean = statistics.mean(scored)
            note = f"; the runs end at {ends:.1f}" if ends < budget else ""
            cells.append(
                f"missed by {target - mean:.2f} (best top-1 within the budget {_stat(scored)}; "
                f"{len(inside)}/{len(rs)} seeds reach it{note}{schedule})"
            )
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


ABLATION_GROUP = "ablation"
"""Issue 20's frontier: manifest runs of a baseline recipe with one change (``set``), described by their ``change``."""


def ablation_table(rows: list[dict[str, str]]) -> str:
    """Each change against the baseline rows of the same method and seeds: top-1 per seed, the mean gain, the
    baseline's seed-to-seed std, the cost in reference epochs, and the verdict the 2x-std rule gives."""
    changes = {e["id"]: e.get("change", "") for e in yaml.safe_load(MANIFEST.read_text())["runs"]}
    base = {(r["method"], r["seed"]): r for r in rows if r["group"] == "baseline"}
    groups: dict[tuple[str, str], list[dict[str, str]]] = defaultdict(list)
    for r in rows:
        if r["group"] == ABLATION_GROUP:
            groups[(r["method"], r["set"])].append(r)
    head = [
        "change",
        "method",
        "seeds",
        "top-1 per seed (baseline)",
        "mean gain",
        "baseline std (3 seeds)",
        "ref. epochs per run (baseline)",
        "verdict",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for (method, _set), rs in sorted(groups.items(), key=lambda kv: min(r["id"] for r in kv[1])):
        rs = sorted(rs, key=lambda r: int(r["seed"]))
        pairs = [(r, base.get((method, r["seed"]))) for r in rs]
        if any(b is None for _, b in pairs):
            raise SystemExit(
                f"error: ablation rows {[r['id'] for r in rs]} need baseline rows of the same seeds"
            )
        gains = [float(r["top1"]) - float(b["top1"]) for r, b in pairs]
        base_all = [float(b["top1"]) for (m, _), b in base.items() if m == method]
        sd = statistics.stdev(base_all) if len(base_all) > 1 else 0.0
        gain = statistics.mean(gains)
        if abs(gain) <= 2 * sd:
            verdict = (
                "no measured gain (inside 2x std)" if len(rs) >= 3 else "inside 2x std at 1 seed: more seeds"
            )
        elif gain > 0:
            verdict = "**pays**" if len(rs) >= 3 else f"better by over 2x std ({len(rs)} seed)"
        else:
            verdict = "costs (below 2x std)"
        cost = f"{_stat([float(r['ref_epochs']) for r in rs])} ({_stat([float(b['ref_epochs']) for _, b in pairs])})"
        lines.append(
            "| "
            + " | ".join(
                [
                    changes.get(rs[0]["id"]) or f"`{rs[0]['set']}`",
                    METHOD_LABEL.get(method, method),
                    str(len(rs)),
                    ", ".join(f"{float(r['top1']):.2f} ({float(b['top1']):.2f})" for r, b in pairs),
                    f"{gain:+.2f}",
                    f"{sd:.2f}",
                    cost,
                    verdict,
                ]
            )
            + " |"
        )
    return "\n".join(lines)


FULL_TUNES = {"fixnorm": "full_resnet9s_fixnorm", "wd": "full_resnet9s_wd"}
"""Issue 20's tuning protocol: each method's 3x3 grid of full-length runs, scored on held-out training images."""


def tuning_table(rows: list[dict[str, str]]) -> str:
    """Each method's full-run tuning grid: held-out top-1 per (regularizer, lr), the winner in bold, and the
    budget spent in training epochs."""
    out = []
    for method, tune_id in FULL_TUNES.items():
        trials = [r for r in rows if r["id"].startswith(tune_id + "/") and r["status"] == "ok"]
        if not trials:
            continue
        points = {
            tuple(tuple(x.split("=", 1)) for x in r["set"].split(";")): float(r["top1"]) for r in trials
        }
        knob = "fc_norm" if method == "fixnorm" else "weight_decay"
        grid = {(float(dict(k)[knob]), float(dict(k)["lr"])): v for k, v in points.items()}
        lrs = sorted({lr for _, lr in grid})
        best = max(grid, key=grid.get)
        epochs = sum(int(r["epochs"]) for r in trials)
        out.append(
            f"| {METHOD_LABEL[method]}: `{knob}` \\ lr | " + " | ".join(f"{lr:g}" for lr in lrs) + " |"
        )
        out.append("|---|" + "---|" * len(lrs))
        for k in sorted({k for k, _ in grid}):
            cells = []
            for lr in lrs:
                v = grid.get((k, lr))
                cells.append("-" if v is None else (f"**{v:.2f}**" if (k, lr) == best else f"{v:.2f}"))
            out.append(f"| {k:g} | " + " | ".join(cells) + " |")
        out.append(f"| *{len(trials)} full runs, {epochs} epochs* |" + " |" * len(lrs))
        out.append("")
    return "\n".join(out).rstrip()


def zoo_table() -> str:
    """Every registry entry: architecture, data, method, size, and the measured top-1 of published weights."""
    from fixnorm_zoo.zoo.registry import Registry

    lines = [
        "| name | timm architecture | data | method | params | GMACs | paper top-1 | measured top-1 / top-5 | status |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for m in Registry().select():
        arch = f"`{m.architecture}`" + (f" {m.model_args}" if m.model_args else "")
        size = "x".join(str(v) for v in m.eval_setting["input_size"][1:])
        measured = f"{m.top1:.2f} / {m.top5:.2f} ({m.eval_split})" if m.top1 is not None else "-"
        lines.append(
            f"| `{m.name}` | {arch} @ {size} | {m.dataset} | {m.method} | {m.params_m:.2f}M | {m.gmacs:.3g} | "
            f"{m.paper_top1 or '-'} | {measured} | {_status(m)} |"
        )
    return "\n".join(lines)


def _status(m) -> str:
    if m.status == "retired":
        return f"retired (older; superseded by `{m.superseded_by}`)"
    return f"{m.status}, bundled" if m.hub.bundled else m.status


TABLES = {
    "zoo": zoo_table,
    "families": families_table,
    "fast": fast_table,
    "baseline": baseline_table,
    "targets": targets_table,
    "tuning": tuning_table,
    "ablation": ablation_table,
}
BLOCK = re.compile(r"(<!-- record:(\w+) -->\n)(.*?)(\n<!-- /record:\2 -->)", re.S)


def render_readme(text: str, rows: list[dict[str, str]]) -> str:
    """``text`` with every ``<!-- record:NAME -->`` block replaced by the table generated from the rows."""

    def fill(m: re.Match) -> str:
        name = m.group(2)
        table = TABLES[name]() if name == "zoo" else TABLES[name](rows)
        return m.group(1) + table + m.group(4)

    return BLOCK.sub(fill, text)


def _history(row: dict[str, str]) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (ROOT / row["log"]).read_text().splitlines() if x.strip()]


def draw_figures(rows: list[dict[str, str]]) -> list[Path]:
    """docs/fmnist_results.png (the families, top-1 per epoch), docs/fmnist_time_to_accuracy[_eN].png,
    docs/fmnist_reference_epochs.png and docs/fixnorm_vs_wd.png (the README's first figure: the ResNet-18 pair's
    seed-0 runs, from the logs their release folders carry)."""
    from fixnorm_zoo.plots import figures, plot_comparison, plot_time_to_accuracy
    from fixnorm_zoo.recipe import load_recipe

    written = []
    pair = {
        m: ROOT / "zoo_mirror" / "fixnorm-zoo" / f"fmnist_resnet18{s}"
        for m, s in (("fixnorm", ""), ("wd", "_wd"))
    }
    if all((folder / "log.jsonl").is_file() for folder in pair.values()):
        labels = {}
        for method, folder in pair.items():
            r = load_recipe(str(folder / "train_hparams.yaml"))
            label = (
                f"FixNorm (fc_norm {r.fc_norm:g}, lr {r.lr:g})"
                if method == "fixnorm"
                else f"weight decay {r.weight_decay:g} (lr {r.lr:g})"
            )
            labels[label] = folder
        path = ROOT / "docs" / "fixnorm_vs_wd.png"
        plot_comparison(
            {label: RunDir(folder).read_history() for label, folder in labels.items()},
            path,
            title="Fashion-MNIST ResNet-18 (half width, output_stride 8), 10 epochs, seed 0: FixNorm vs weight decay",
        )
        written.append(path)
    fast: dict[str, list[list[dict]]] = defaultdict(list)
    seeds: dict[str, int] = defaultdict(int)
    for r in sorted(
        (r for r in rows if r["group"] == "fast" and r["log"]), key=lambda r: (int(r["epochs"]), r["method"])
    ):
        label = f"{METHOD_LABEL.get(r['method'], r['method'])}, {r['epochs']} epochs"
        fast[label].append(_history(r))
        seeds[label] += 1
    if fast:
        path = ROOT / "docs" / "fmnist_time_to_accuracy.png"
        plot_time_to_accuracy(
            {
                f"{label} ({seeds[label]} seed{'s' if seeds[label] > 1 else ''})": h
                for label, h in fast.items()
            },
            path,
            targets=TARGETS,
            budgets=(10, 30),
            ylim=(88, 95.5),
            title="Fashion-MNIST resnet9s: test top-1 vs training-loop minutes (colour: run; line style: seed)",
        )
        written.append(path)
    groups = _baseline_groups(rows)
    if groups:
        curves = {
            f"{METHOD_LABEL.get(m, m)}, {BASELINE_GROUPS[g]} ({len(rs)} seeds)": rs
            for (m, g), rs in groups.items()
        }
        path = ROOT / "docs" / "fmnist_reference_epochs.png"
        plot_time_to_accuracy(
            {label: [_history(r) for r in rs] for label, rs in curves.items()},
            path,
            targets=(94, 95),
            budgets=tuple(sorted({b for _, b in BUDGET_TARGETS})),
            ylim=(88, 95.5),
            unit_s={label: [float(r["ref_epoch_s"]) for r in rs] for label, rs in curves.items()},
            xlabel="training cost (reference epochs: seconds / the yardstick's epoch seconds)",
            title="Fashion-MNIST resnet9s: test top-1 vs reference epochs (colour: run; line style: seed)",
        )
        written.append(path)
    families: dict[str, dict[str, list[dict[str, str]]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        if r["group"] == "families" and r["log"]:
            families[Path(r["recipe"]).name.rsplit("_", 1)[0]][r["method"]].append(r)
    plt = figures()
    names = sorted(families)
    fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 4.2), squeeze=False)
    colors = {"fixnorm": "tab:blue", "wd": "tab:orange"}
    styles = ("-", "--", ":")
    for ax, family in zip(axes[0], names, strict=True):
        for method, rs in sorted(families[family].items()):
            for i, r in enumerate(sorted(rs, key=lambda r: int(r["seed"]))):
                log = _history(r)
                ax.plot(
                    [h["epoch"] for h in log],
                    [h["top1"] for h in log],
                    color=colors[method],
                    ls=styles[i % len(styles)],
                    marker="o",
                    ms=3,
                    alpha=0.85,
                    label=f"{METHOD_LABEL[method]}, seed {r['seed']}",
                )
        ax.set(title=family, xlabel="epoch", ylabel="test top-1 (%)")
        ax.grid(alpha=0.3)
    fig.suptitle("Fashion-MNIST: FixNorm vs weight decay (colour: method; line style: seed)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), frameon=False, fontsize="small")
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    path = ROOT / "docs" / "fmnist_results.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    written.append(path)
    return written


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="run the manifest entries that have no row yet")
    p.add_argument("--only", nargs="+", metavar="ID", help="run only these manifest ids")
    p = sub.add_parser("readme", help="regenerate the README's tables and the figures from the rows")
    p.add_argument("--check", action="store_true", help="only check that the README's tables match the rows")
    args = ap.parse_args()
    if args.command == "run":
        run(args.only)
        return 0
    rows = read_rows()
    stale = []
    for page in PAGES:
        text = page.read_text()
        new = render_readme(text, rows)
        if new != text:
            stale.append(page)
            if not args.check:
                atomic_write_text(page, new)
    if args.check:
        if stale:
            names = ", ".join(str(p.relative_to(ROOT)) for p in stale)
            print(
                f"{names}: generated tables differ from eval/results.csv: run eval/record.py readme",
                file=sys.stderr,
            )
            return 1
        return 0
    for path in draw_figures(rows):
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
