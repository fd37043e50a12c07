"""Running the manifest: each entry that has no row yet is trained (or tuned, a trial at a time) and its rows
appended; timed runs are priced in reference epochs by the yardstick measured right before them."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the package, from a checkout

from fixnorm_zoo.engine.rundir import RunDir  # noqa: E402
from fixnorm_zoo.tune.strategies import param_key  # noqa: E402
from fixnorm_zoo.utils.atomic import append_csv_rows  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from record_rows import (  # noqa: E402
    CLI,
    LOGS,
    MANIFEST,
    ROOT,
    TARGETS,
    TUNER,
    YARDSTICK,
    YARDSTICK_COLUMNS,
    YARDSTICK_LOG,
    append_rows,
    minutes_to,
    read_rows,
    seconds_to,
)

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
