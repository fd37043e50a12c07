"""Write model_cards/NAME.md for every registry entry: a published entry's card is what `fixnorm-zoo publish`
wrote into its release folder (zoo_mirror/ORG/NAME/README.md), byte for byte; a recipe-only or retired entry's
card comes from fixnorm_zoo.zoo.cards.render_entry_card. Cards of names no longer in the registry are removed.

    .venv/bin/python tools/model_cards.py [--check]     # --check: exit 1 if any card differs from what it would write
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
KEEP = {"README.md", "template.md"}


def expected_cards(release: Path) -> dict[str, str]:
    from fixnorm_zoo.zoo.cards import render_entry_card
    from fixnorm_zoo.zoo.hub import mirror_repo_dir
    from fixnorm_zoo.zoo.registry import REGISTRY_FILE, Registry

    cards = {}
    for info in Registry(REGISTRY_FILE).models():
        if info.status == "published":
            card = mirror_repo_dir(release, info.hub.repo_id) / "README.md"
            if not card.is_file():
                raise SystemExit(
                    f"error: {info.name}: {card} is missing: publish it into the release folder first"
                )
            cards[f"{info.name}.md"] = card.read_text()
        else:
            cards[f"{info.name}.md"] = render_entry_card(info)
    return cards


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="only compare; exit 1 on any difference")
    ap.add_argument(
        "--release", default=str(ROOT / "zoo_mirror"), help="the release folder (default zoo_mirror)"
    )
    args = ap.parse_args()
    from fixnorm_zoo.utils.atomic import atomic_write_text
    from fixnorm_zoo.zoo.cards import CARDS_DIR

    cards = expected_cards(Path(args.release))
    stale = sorted(p.name for p in CARDS_DIR.glob("*.md") if p.name not in KEEP and p.name not in cards)
    differ = sorted(
        n for n, text in cards.items() if not (CARDS_DIR / n).is_file() or (CARDS_DIR / n).read_text() != text
    )
    if args.check:
        if stale or differ:
            print(
                f"model_cards/ is out of date (differ: {differ}, stale: {stale}): run tools/model_cards.py",
                file=sys.stderr,
            )
            return 1
        return 0
    for name in differ:
        atomic_write_text(CARDS_DIR / name, cards[name])
        print(f"wrote model_cards/{name}")
    for name in stale:
        (CARDS_DIR / name).unlink()
        print(f"removed model_cards/{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
