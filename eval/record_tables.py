"""The README's and docs' generated tables, each rendered from the rows between its ``<!-- record:NAME -->``
markers."""

from __future__ import annotations

import re
import statistics
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the package, from a checkout

from fixnorm_zoo.plots import METHOD_LABELS as METHOD_LABEL  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from record_rows import MANIFEST, PUBLIC, TARGETS, epochs_to, history_of  # noqa: E402

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
        histories = [history_of(r) for r in rs]  # each log read once, for every target
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


def baseline_groups(rows: list[dict[str, str]]) -> dict[tuple[str, str], list[dict[str, str]]]:
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
    for (method, group), rs in baseline_groups(rows).items():
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
    groups = baseline_groups(rows)
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
            curves = [_ref_curve(r, history_of(r)) for r in rs]
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


def pilot_table(rows: list[dict[str, str]]) -> str:
    """The paper's families' adaptation pilot: per family and adaptation, the held-out top-1 of one FixNorm run at
    the recipe's starting knobs, its epochs and the command that repeats it."""
    lines = [
        "| family | adaptation (`--set`) | epochs | held-out top-1 % | trial minutes (1 thread, shared cores) | rerun |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        if not r["id"].startswith("pilot_"):
            continue
        entry = r["id"].split("/")[0]
        family = Path(r["recipe"]).name.rsplit("_", 1)[0]
        sets = [a for a in r["command"].split("--set ")[1:] if not a.startswith(("epochs=", "seed="))]
        adaptation = (
            ", ".join(f"`{a.split(' --')[0].strip().strip(chr(39))}`" for a in sets) or "stock, 28 px"
        )
        lines.append(
            f"| {family} | {adaptation} | {r['epochs']} | {float(r['top1']):.2f} | {float(r['train_min']):.1f} | "
            f"`eval/record.py run --only {entry}` |"
        )
    return "\n".join(lines)


TABLES = {
    "pilot": pilot_table,
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
