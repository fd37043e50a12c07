"""Plots people look at: one run's curves, and FixNorm against its weight-decay twin."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fixnorm_zoo.rundir import RunDir


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_curves(history: list[dict[str, Any]], path: Path, *, title: str) -> None:
    """Loss and test top-1 against epoch, one PNG."""
    plt = pyplot()
    epochs = [h["epoch"] for h in history]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.4))
    ax1.plot(epochs, [h["train_loss"] for h in history], marker="o")
    ax1.set(xlabel="epoch", ylabel="train loss", title="loss")
    ax2.plot(epochs, [h["top1"] for h in history], marker="o", label="weights")
    if any("top1_ema" in h for h in history):
        ax2.plot(epochs, [h.get("top1_ema") for h in history], marker="s", label="EMA")
    ax2.set(xlabel="epoch", ylabel="test top-1 (%)", title="accuracy")
    ax2.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_comparison(run_dirs: dict[str, Path], path: Path, *, title: str) -> None:
    """Effective LR of the scale-invariant weights, classifier norm and test top-1 per epoch, one line per run.

    Args:
        run_dirs: ``{label: run directory}`` (each with its ``log.jsonl``).
        path: the PNG to write.
        title: the figure title.
    """
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    any_positive_lr = False
    for label, run in run_dirs.items():
        rows = RunDir(run).read_history()
        epochs = [r["epoch"] for r in rows]
        eff_lr = [r.get("eff_lr_invariant") for r in rows]
        any_positive_lr |= any(v is not None and v > 0 for v in eff_lr)
        axes[0].plot(epochs, eff_lr, marker="o", label=label)
        axes[1].plot(epochs, [r.get("fc_norm") for r in rows], marker="o", label=label)
        axes[2].plot(epochs, [r["top1"] for r in rows], marker="o", label=label)
    # log scale only where there is something to scale: a 1-epoch cosine run ends at LR 0
    axes[0].set(
        xlabel="epoch (value at its end)",
        ylabel="lr / ||W||^2 (median)",
        yscale="log" if any_positive_lr else "linear",
        title="effective LR, scale-invariant weights",
    )
    axes[1].set(xlabel="epoch", ylabel="||W_fc||", title="classifier norm")
    axes[2].set(xlabel="epoch", ylabel="test top-1 (%)", title="accuracy")
    for ax in axes:
        ax.legend()
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_trials(records: list[dict[str, Any]], *, knobs: tuple[str, ...], path: Path) -> None:
    """The searched points on log axes (first knob x, second knob y), colour = proxy score, numbered in order;
    diverged or failed trials as red crosses."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.6, 4.4))
    xk, yk = knobs
    ok = [r for r in records if r.get("status") == "ok"]
    bad = [r for r in records if r.get("status") != "ok"]
    if ok:
        sc = ax.scatter(
            [r["params"][xk] for r in ok],
            [r["params"][yk] for r in ok],
            c=[r["score"] for r in ok],
            cmap="viridis",
            s=90,
            edgecolors="k",
        )
        fig.colorbar(sc, ax=ax, label="proxy top-1 (%)")
        best = max(ok, key=lambda r: r["score"])
        ax.scatter(
            [best["params"][xk]],
            [best["params"][yk]],
            marker="*",
            s=320,
            c="none",
            edgecolors="r",
            label=f"best {best['score']:.2f}",
        )
        ax.legend(loc="best", fontsize=8)
    if bad:
        ax.scatter([r["params"][xk] for r in bad], [r["params"][yk] for r in bad], marker="x", c="r", s=60)
    for i, r in enumerate(records, 1):
        ax.annotate(
            str(i), (r["params"][xk], r["params"][yk]), fontsize=7, xytext=(5, 5), textcoords="offset points"
        )
    ax.set(xscale="log", yscale="log", xlabel=xk, ylabel=yk, title=f"{len(records)} trials")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_time_to_accuracy(
    histories: dict[str, list[list[dict[str, Any]]]],
    path: Path,
    *,
    title: str,
    targets: tuple[float, ...] = (),
    budgets: tuple[float, ...] = (),
    ylim: tuple[float, float] | None = None,
) -> None:
    """Test top-1 against cumulative training wall-clock minutes (per-epoch ``epoch_train_s`` summed), one colour
    per label (method and schedule) and one line per seed, with horizontal lines at the target accuracies and
    vertical ones at the time budgets: a DAWNBench-style view."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for colour, (label, runs) in zip(colours, histories.items(), strict=False):
        for i, history in enumerate(runs):
            minutes, total = [], 0.0
            for h in history:
                total += h["epoch_train_s"]
                minutes.append(total / 60)
            ax.plot(
                minutes,
                [h["top1"] for h in history],
                marker="o",
                ms=3,
                color=colour,
                alpha=0.85,
                label=label if i == 0 else None,
            )
    for t in targets:
        ax.axhline(t, color="grey", lw=0.8, ls="--")
    for b in budgets:
        ax.axvline(b, color="grey", lw=0.8, ls=":")
    if ylim:
        ax.set_ylim(*ylim)
    ax.set(xlabel="training wall-clock (minutes, 2 CPU cores)", ylabel="test top-1 (%)", title=title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
