"""`make demo`'s pipeline end to end on a shrunken recipe: train, eval, publish to a mirror, load, draw."""

from __future__ import annotations

import json
import os
from pathlib import Path

from fixnorm_zoo.zoo.registry import REGISTRY_FILE


def test_demo_pipeline_writes_everything_and_leaves_the_package_registry_alone(
    tmp_path: Path, capsys, monkeypatch
) -> None:
    from fixnorm_zoo.demo import DEMO_NAME, DEMO_REPO, run_demo

    monkeypatch.delenv("FIXNORM_ZOO_REGISTRY", raising=False)
    monkeypatch.delenv("FIXNORM_ZOO_HUB", raising=False)
    before = REGISTRY_FILE.read_text()
    result = run_demo(
        output_dir=tmp_path,
        overrides={
            "train_subset": 512,
            "epochs": 1,
            "batch_size": 64,
            "model_args": {"widths": [8, 8, 16, 32]},
        },
    )
    out = capsys.readouterr().out
    assert REGISTRY_FILE.read_text() == before
    assert "FIXNORM_ZOO_REGISTRY" not in os.environ and "FIXNORM_ZOO_HUB" not in os.environ  # never set
    entry = next(
        m for m in json.loads((tmp_path / "zoo.json").read_text())["models"] if m["name"] == DEMO_NAME
    )
    assert entry["status"] == "published" and entry["top1"] == round(result["published"]["top1"], 3)
    assert abs(result["eval"]["top1"] - result["summary"]["top1"]) < 1e-6
    assert (tmp_path / "hub" / DEMO_REPO / "model.safetensors").is_file()
    assert (tmp_path / "hub" / DEMO_REPO / "README.md").read_text().startswith("---")
    assert (tmp_path / "predictions.png").stat().st_size > 20_000
    assert "weight-decay twin (recorded" in out and str(tmp_path / "predictions.png") in out
    # the last hint works where a pip user is (no Makefile there)
    assert (
        out.rstrip().splitlines()[-1]
        == "Repeat with: fixnorm-zoo demo   (in a checkout of the repository: make demo)"
    )


def test_demo_refuses_a_folder_it_did_not_make(tmp_path: Path) -> None:
    import pytest

    from fixnorm_zoo.demo import run_demo
    from fixnorm_zoo.errors import FixNormZooError

    (tmp_path / "hub").mkdir()
    (tmp_path / "hub" / "keep.txt").write_text("user data")
    (tmp_path / "zoo.json").write_text("{}")
    with pytest.raises(FixNormZooError, match="not made by an earlier demo"):
        run_demo(output_dir=tmp_path)
    assert (tmp_path / "hub" / "keep.txt").read_text() == "user data" and (
        tmp_path / "zoo.json"
    ).read_text() == "{}"


def test_the_demos_recorded_twin_is_the_current_recipes_row_of_the_record() -> None:
    """demo_recorded.csv holds one row per model, each the measured row of the manifest run that writes the file
    (the current recipe's), and the demo compares against it. It held the withdrawn proxy-tuned twin's 91.1 first,
    and the demo printed that: a +1.0 "FixNorm win" the README had withdrawn."""
    import csv

    import yaml

    from fixnorm_zoo.demo import RECORDED, _recorded_twin

    root = Path(__file__).resolve().parent.parent
    with open(RECORDED) as f:
        shipped = list(csv.DictReader(f))
    assert len({r["model"] for r in shipped}) == len(shipped), "one row per model"
    manifest = yaml.safe_load((root / "eval" / "manifest.yaml").read_text())
    writers = [e for e in manifest["runs"] if e.get("results_csv") == "fixnorm_zoo/demo_recorded.csv"]
    with open(root / "eval" / "results.csv") as f:
        measured = {r["id"]: r for r in csv.DictReader(f)}
    assert [float(r["top1"]) for r in shipped] == [float(measured[e["id"]]["top1"]) for e in writers]
    assert float(_recorded_twin()["top1"]) == float(measured["demo_wd"]["top1"])
