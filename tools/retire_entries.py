"""Retire zoo entries before their names are republished: each ``OLD`` entry of fixnorm_zoo/zoo.json is copied to
``NEW``, marked ``status: retired`` with ``superseded_by: OLD`` (the name the new model takes), without aliases and
not bundled; ``OLD`` itself stays, for ``fixnorm-zoo publish --replace`` to put the new model in (keeping its
aliases, twin link and license). The retired copy keeps the old measured numbers, recipe and sha256 on record;
``load`` refuses it with a line naming the replacement.

    .venv/bin/python tools/retire_entries.py OLD=NEW [OLD=NEW ...] --note "why"
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("pairs", nargs="+", metavar="OLD=NEW")
    ap.add_argument("--note", required=True, help="why they are retired (kept in each entry's notes)")
    args = ap.parse_args()
    from fixnorm_zoo.zoo.registry import REGISTRY_FILE, Registry

    registry = Registry(REGISTRY_FILE)
    renames = dict(p.partition("=")[::2] for p in args.pairs)
    for pair in args.pairs:
        old, sep, new = pair.partition("=")
        if not sep or not new:
            print(
                f"error: {pair!r}: write OLD=NEW, e.g. fmnist_resnet9s=fmnist_resnet9s_proxytuned",
                file=sys.stderr,
            )
            return 2
        info = registry.get(old)
        if info.name != old:
            print(f"error: {old!r} is an alias of {info.name!r}: name the entry itself", file=sys.stderr)
            return 2
        retired = dataclasses.replace(
            info,
            name=new,
            status="retired",
            superseded_by=old,
            aliases=(),
            notes=f"{args.note} {info.notes}".strip(),
            baseline_of=renames.get(info.baseline_of, info.baseline_of),  # a twin names its retired partner
            hub=dataclasses.replace(info.hub, bundled=False),  # not served: not shipped either
        )
        registry.upsert(retired, replace=False)
        print(f"kept the current {old} on record as {new} (retired); publish the new model with --replace")
    return 0


if __name__ == "__main__":
    sys.exit(main())
