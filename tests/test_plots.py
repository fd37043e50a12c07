"""Figures people look at: a legend never covers a curve (one legend below the axes), no series is
clipped (a zoomed view comes with an unclipped one; a log axis leaves out LR 0 and says so), and each seed of a run
is distinguishable."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from fixnorm_zoo.engine.rundir import RunDir


def _log(folder: Path, *, top1: list[float], lr: list[float]) -> Path:
    folder.mkdir()
    rows = [
        {"epoch": i + 1, "train_loss": 1.0 / (i + 1), "top1": t, "eff_lr_invariant": v, "fc_norm": 2.0}
        for i, (t, v) in enumerate(zip(top1, lr, strict=True))
    ]
    (folder / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def _no_axes_legend(fig) -> None:
    assert all(ax.get_legend() is None for ax in fig.axes)


def test_comparison_legend_below_and_lr_zero_left_out_of_the_log_axis(tmp_path) -> None:
    from fixnorm_zoo.plots import plot_comparison

    a = _log(tmp_path / "a", top1=[80, 90, 93], lr=[1e-2, 1e-3, 0.0])
    b = _log(tmp_path / "b", top1=[60, 85, 92], lr=[2e-2, 5e-3, 0.0])
    fig = plot_comparison(
        {"FixNorm": RunDir(a).read_history(), "weight decay": RunDir(b).read_history()},
        tmp_path / "c.png",
        title="t",
    )
    assert (tmp_path / "c.png").stat().st_size > 0
    _no_axes_legend(fig)
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["FixNorm", "weight decay"]
    lr_axis, _, acc_axis = fig.axes
    assert lr_axis.get_yscale() == "log" and "LR 0 not drawn" in lr_axis.get_xlabel()
    for line in lr_axis.get_lines():
        assert math.isnan(line.get_ydata()[-1])  # not a plunge to the axis' bottom
    low, high = acc_axis.get_ylim()
    assert low <= 60 and high >= 93  # every accuracy inside the axis


def test_zoomed_time_to_accuracy_has_an_unclipped_panel_and_styles_per_seed(tmp_path) -> None:
    from fixnorm_zoo.plots import plot_time_to_accuracy

    def run(top1):
        return [{"epoch_train_s": 60.0, "top1": t} for t in top1]

    histories = {"FixNorm": [run([70, 90, 94]), run([75, 91, 94.2])], "weight decay": [run([50, 88, 93.5])]}
    fig = plot_time_to_accuracy(histories, tmp_path / "t.png", title="t", ylim=(88, 95.5))
    _no_axes_legend(fig)
    zoom, full = fig.axes
    assert zoom.get_ylim() == pytest.approx((88, 95.5))
    low, high = full.get_ylim()
    assert low <= 50 and high >= 94.2
    styles = [
        (line.get_color(), line.get_linestyle()) for line in zoom.get_lines() if len(line.get_xdata()) == 3
    ]
    assert len(set(styles)) == 3  # two seeds of one run differ in style, the runs in colour
