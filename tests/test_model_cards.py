"""model_cards/ holds one card per registry entry, equal to what publish wrote (published) or to the entry card
(recipe-only, retired): tools/model_cards.py --check."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_model_cards_are_what_publish_and_the_registry_give() -> None:
    r = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "model_cards.py"), "--check"], capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr


def test_recipe_and_retired_cards_say_what_is_and_is_not_measured() -> None:
    from fixnorm_zoo.cards import CARDS_DIR
    from fixnorm_zoo.registry import list_models, model_info

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
