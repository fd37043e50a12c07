"""model_cards/ holds one card per registry entry, equal to what publish wrote (published) or to the entry card
(recipe-only, retired): tools/model_cards.py --check."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_model_cards_are_what_publish_and_the_registry_give() -> None:
    r = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "model_cards.py"), "--check"], capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr


def test_recipe_and_retired_cards_say_what_is_and_is_not_measured() -> None:
    from fixnorm_zoo.zoo.cards import CARDS_DIR
    from fixnorm_zoo.zoo.registry import list_models, model_info

    names = list_models()
    assert {p.stem for p in CARDS_DIR.glob("*.md")} - {"README", "template"} == set(names)
    for name in names:
        info, text = model_info(name), (CARDS_DIR / f"{name}.md").read_text()
        assert text.startswith("---\n") and "library_name: timm" in text
        if info.status != "published":
            assert (
                "arxiv:2103.15345" in text
            )  # published cards: as publish wrote them (older ones predate the tag)
        if info.status == "recipe":
            assert "no accuracy of it is measured here" in text and f"fixnorm-zoo train {info.recipe}" in text
        elif info.status == "retired":
            assert f"superseded by `{info.superseded_by}`" in text and str(info.top1) in text
        else:
            assert info.hub.sha256 in text


def _published():
    from fixnorm_zoo.zoo.registry import Registry

    return [info for info in Registry().models() if info.status == "published"]


def test_every_published_repo_carries_hparams_log_results_and_a_current_card() -> None:
    """Each published repo folder holds the recipe as run, the per-epoch log, the measured row and where it ran, and
    its card (the Hub's README) follows today's template: eval setting in the metadata, the input, validate.py,
    intended use, seed spread, the method's tags, the twin by its zoo name, links to those files."""
    import csv
    import json

    from huggingface_hub import ModelCard

    from fixnorm_zoo.zoo.cards import seeds_line
    from fixnorm_zoo.zoo.hub import mirror_repo_dir

    published = _published()
    assert len(published) == 8
    for info in published:
        folder = mirror_repo_dir(ROOT / "zoo_mirror", info.hub.repo_id)
        with open(folder / "results.csv", newline="") as f:
            (row,) = list(csv.DictReader(f))
        assert float(row["top1"]) == pytest.approx(info.top1, abs=0.1), info.name
        log = [json.loads(line) for line in (folder / "log.jsonl").read_text().splitlines()]
        assert log[-1]["top1"] == pytest.approx(info.top1, abs=0.01), info.name  # the log ends at the number
        prov = json.loads((folder / "provenance.json").read_text())
        assert prov["evaluation"]["hardware"] and prov["evaluation"]["code_revision"], info.name
        assert prov["training"] or "predates the provenance record" in prov["note"], info.name
        assert "model: " + info.architecture in (folder / "train_hparams.yaml").read_text(), info.name
        card = ModelCard.load(folder / "README.md")
        meta = card.data.to_dict()
        assert meta["eval_setting"]["input_size"] == list(info.eval_setting["input_size"]), info.name
        assert "arxiv:2103.15345" in meta["tags"], info.name
        assert ("fixnorm" in meta["tags"]) == (info.method == "fixnorm") != ("weight-decay" in meta["tags"])
        assert meta["model-index"][0]["name"] == info.name
        text = card.text
        assert f"# {info.name}\n" in text and seeds_line(info.notes) in text and "seeds 0-2" in text, (
            info.name
        )
        assert "--in-chans 1" in text and "## Intended use and limitations" in text, info.name
        twin = next(o for o in published if info.name in (o.baseline_of,) or o.name == info.baseline_of)
        assert f"| {twin.name} ({twin.method}) | {twin.top1:.2f} |" in text, info.name
        for name in ("config.json", "train_hparams.yaml", "log.jsonl", "results.csv", "provenance.json"):
            assert f"[`{name}`]({name})" in text and (folder / name).is_file(), (info.name, name)


def test_release_folders_are_what_refresh_release_writes() -> None:
    r = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "refresh_release.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr


def test_refresh_release_backfills_a_folder_published_before_the_provenance_files(tmp_path) -> None:
    """A folder with weights, config and card only gets the four files back from the card, the kept log and a
    fresh re-evaluation (which must reproduce the registry's number), and the same card."""
    import importlib.util
    import json
    import shutil

    from fixnorm_zoo.zoo.registry import model_info

    spec = importlib.util.spec_from_file_location("refresh_release", ROOT / "tools" / "refresh_release.py")
    refresh_release = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(refresh_release)
    from fixnorm_zoo.zoo.registry import Registry

    info = model_info("tinynet_e.fixnorm_fmnist")
    for repo_id in (info.hub.repo_id, model_info("tinynet_e.wd_fmnist").hub.repo_id):  # the pair: its figure
        shutil.copytree(ROOT / "zoo_mirror" / repo_id, tmp_path / repo_id)
    source = ROOT / "zoo_mirror" / info.hub.repo_id
    folder = tmp_path / info.hub.repo_id
    for name in ("train_hparams.yaml", "log.jsonl", "results.csv", "provenance.json"):
        (folder / name).unlink()
    registry = Registry()
    assert refresh_release.refresh(info, release=tmp_path, registry=registry, check=True) != []
    written = refresh_release.refresh(info, release=tmp_path, registry=registry, check=False)
    # the four files are back; the card (and, drawn by this matplotlib, the figures) unchanged
    assert written[:4] == ["train_hparams.yaml", "log.jsonl", "results.csv", "provenance.json"]
    assert "README.md" not in written
    for name in ("train_hparams.yaml", "log.jsonl", "results.csv", "README.md"):
        assert (folder / name).read_text() == (source / name).read_text(), name
    assert json.loads((folder / "provenance.json").read_text())["training_threads"] == 1
    assert refresh_release.refresh(info, release=tmp_path, registry=registry, check=True) == []
    (folder / "model.safetensors").write_bytes(b"not the published weights")
    with pytest.raises(SystemExit, match="not the registry's sha256"):
        refresh_release.refresh(info, release=tmp_path, registry=registry, check=True)
