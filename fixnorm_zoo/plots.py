"""Plots people look at: one run's curves, and FixNorm against its weight-decay twin."""

from __future__ import annotations

from pathlib import Path
from typing import Any

METHOD_LABELS = {"fixnorm": "FixNorm", "wd": "weight decay"}
"""How a figure's legend names each training method."""


def method_pair(runs: dict[str, Any]) -> dict[str, Any]:
    """``{method: history}`` as :func:`plot_comparison`'s ``{legend label: history}``, FixNorm first, so that every card of
    a pair draws each method in the same colour."""
    return {METHOD_LABELS.get(m, m): runs[m] for m in sorted(runs, key=lambda m: m != "fixnorm")}


class _Figures:
    """The three pyplot calls the figures use (``subplots``, ``close``, ``rcParams``), on figures that own their
    canvas: nothing here imports pyplot or calls ``matplotlib.use``, so a notebook's backend stays as it was."""

    @staticmethod
    def subplots(*args: Any, figsize: tuple[float, float] | None = None, **kwargs: Any):
        from matplotlib.figure import Figure

        fig = Figure(figsize=figsize)
        return fig, fig.subplots(*args, **kwargs)

    @staticmethod
    def close(fig: Any) -> None:
        """Nothing to release: the figure is not registered with pyplot."""

    @property
    def rcParams(self):  # noqa: N802 - pyplot's name
        import matplotlib

        return matplotlib.rcParams


def figures() -> _Figures:
    """pyplot-shaped access to figures that never touch pyplot's global state (see :class:`_Figures`)."""
    return _Figures()


def plot_curves(history: list[dict[str, Any]], path: Path, *, title: str) -> Any:
    """Loss and test top-1 against epoch, one PNG."""
    plt = figures()
    epochs = [h["epoch"] for h in history]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.4))
    ax1.plot(epochs, [h["train_loss"] for h in history], marker="o")
    ax1.set(xlabel="epoch", ylabel="train loss", title="loss")
    ax2.plot(epochs, [h["top1"] for h in history], marker="o", label="weights")
    if any("top1_ema" in h for h in history):
        ax2.plot(epochs, [h.get("top1_ema") for h in history], marker="s", label="EMA")
    ax2.set(xlabel="epoch", ylabel="test top-1 (%)", title="accuracy")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    _legend_below(fig, ax2)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return fig  # for inspection (tests); the PNG is the product


def _legend_below(fig: Any, ax: Any) -> None:
    """One legend for the figure, below the axes, so that it never covers a curve (``ax`` holds every label); a
    figure with one unlabelled series gets none. Lays the figure out."""
    handles, labels = ax.get_legend_handles_labels()
    if len(labels) < 2:
        fig.tight_layout()
        return
    rows = (len(labels) + 2) // 3
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 3), frameon=False, fontsize="small")
    fig.tight_layout(rect=(0, 0.02 + 0.045 * rows, 1, 1))


def plot_comparison(histories: dict[str, list[dict[str, Any]]], path: Path, *, title: str) -> Any:
    """Effective LR of the scale-invariant weights, classifier norm and test top-1 per epoch, one line per run.

    Args:
        histories: ``{label: a run's per-epoch rows}`` (``RunDir(run).read_history()``: the figures read no run
            directory themselves, so that the engine can draw its own curves).
        path: the PNG to write.
        title: the figure title.
    """
    plt = figures()
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.9))
    # a cosine schedule ends at LR 0, which a log axis cannot show: such points are left out and the axis says so
    positive = [r.get("eff_lr_invariant") for rows in histories.values() for r in rows]
    log_lr = any(v is not None and v > 0 for v in positive)
    dropped = log_lr and any(v is not None and v <= 0 for v in positive)
    for label, rows in histories.items():
        epochs = [r["epoch"] for r in rows]
        eff_lr = [r.get("eff_lr_invariant") for r in rows]
        if log_lr:
            eff_lr = [v if v is not None and v > 0 else float("nan") for v in eff_lr]
        axes[0].plot(epochs, eff_lr, marker="o", label=label)
        axes[1].plot(epochs, [r.get("fc_norm") for r in rows], marker="o", label=label)
        axes[2].plot(epochs, [r["top1"] for r in rows], marker="o", label=label)
    axes[0].set(
        xlabel="epoch (value at its end)" + ("; LR 0 not drawn" if dropped else ""),
        ylabel="lr / ||W||^2 (median)",
        yscale="log" if log_lr else "linear",
        title="effective LR, scale-invariant weights",
    )
    axes[1].set(xlabel="epoch", ylabel="||W_fc||", title="classifier norm")
    axes[2].set(xlabel="epoch", ylabel="test top-1 (%)", title="accuracy")
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    _legend_below(fig, axes[0])
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return fig  # for inspection (tests); the PNG is the product


def plot_trials(records: list[dict[str, Any]], *, knobs: tuple[str, ...], path: Path) -> None:
    """The searched points on log axes (first knob x, second knob y), colour = proxy score, numbered in order;
    diverged or failed trials as red crosses."""
    plt = figures()
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
    unit_s: dict[str, list[float]] | None = None,
    xlabel: str = "training wall-clock (minutes, 2 CPU cores)",
) -> Any:
    """Test top-1 against cumulative training time (per-epoch ``epoch_train_s`` summed), one colour per label
    (method and schedule) and one line per seed, with horizontal lines at the target accuracies and vertical ones at
    the budgets: a DAWNBench-style view. Time is in minutes, or in units of ``unit_s[label][i]`` seconds for the
    i-th run of a label (e.g. each run's reference-epoch seconds, so that runs from different machines compare)."""
    plt = figures()
    # with a zoom (ylim), a second panel shows every point unclipped; the zoom is the first, larger one
    if ylim:
        fig, (ax, full) = plt.subplots(1, 2, figsize=(11, 5.0), width_ratios=(2.2, 1))
        panels = (ax, full)
    else:
        fig, ax = plt.subplots(figsize=(7.5, 5.0))
        panels = (ax,)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    styles = ("-", "--", ":")
    for colour, (label, runs) in zip(colours, histories.items(), strict=False):
        for i, history in enumerate(runs):
            unit = unit_s[label][i] if unit_s else 60.0
            xs, total = [], 0.0
            for h in history:
                total += h["epoch_train_s"]
                xs.append(total / unit)
            for panel in panels:
                panel.plot(
                    xs,
                    [h["top1"] for h in history],
                    marker="o",
                    ms=3,
                    ls=styles[i % len(styles)],  # each seed distinguishable within its colour
                    color=colour,
                    alpha=0.85,
                    label=label if i == 0 and panel is ax else None,
                )
    for panel in panels:
        for t in targets:
            panel.axhline(t, color="grey", lw=0.8, ls="--")
        for b in budgets:
            panel.axvline(b, color="grey", lw=0.8, ls=":")
        panel.grid(alpha=0.3)
    if ylim:
        ax.set_ylim(*ylim)
        ax.set(title=f"zoom: {ylim[0]:g}-{ylim[1]:g}%")
        full.set(xlabel="(same axis as the zoom)", title="every point")
    ax.set(xlabel=xlabel, ylabel="test top-1 (%)")
    fig.suptitle(title)
    _legend_below(fig, ax)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return fig  # for inspection (tests); the PNG is the product


def plot_families(
    families: dict[str, dict[str, list[tuple[str, list[dict[str, Any]]]]]], path: Path, *, title: str
) -> Any:
    """Test top-1 per epoch, one panel per architecture family, one line per method (colour) and seed (line style).

    Args:
        families: ``{family: {method: [(seed, a run's per-epoch rows), ...]}}``.
        path: the PNG to write.
        title: the figure title.
    """
    plt = figures()
    names = sorted(families)
    fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 4.2), squeeze=False)
    colors = {"fixnorm": "tab:blue", "wd": "tab:orange"}
    styles = ("-", "--", ":")
    for ax, family in zip(axes[0], names, strict=True):
        for method, runs in sorted(families[family].items()):
            for i, (seed, log) in enumerate(runs):
                ax.plot(
                    [h["epoch"] for h in log],
                    [h["top1"] for h in log],
                    color=colors[method],
                    ls=styles[i % len(styles)],
                    marker="o",
                    ms=3,
                    alpha=0.85,
                    label=f"{METHOD_LABELS[method]}, seed {seed}",
                )
        ax.set(title=family, xlabel="epoch", ylabel="test top-1 (%)")
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), frameon=False, fontsize="small")
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return fig
