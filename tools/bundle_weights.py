"""Ship the named published models' weights inside the package (``fixnorm_zoo/bundled/ORG/NAME/``), so that
``pip install fixnorm_zoo`` alone loads them: copies each one's weights file from the release folder after checking
it against the registry's sha256, marks the entry ``hub.bundled`` in fixnorm_zoo/zoo.json, and unmarks (and removes
the bundled copy of) every other entry. Only small, current baselines belong here (a few MB in all); older or larger
ones stay in the release folder and on the Hub.

    .venv/bin/python tools/bundle_weights.py NAME [NAME ...] [--mirror zoo_mirror]
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
    ap.add_argument("names", nargs="+", help="zoo names to bundle (every other entry is unbundled)")
    ap.add_argument("--mirror", default=str(ROOT / "zoo_mirror"), help="release folder to copy from")
    args = ap.parse_args()
    from fixnorm_zoo.utils.atomic import atomic_write_bytes
    from fixnorm_zoo.zoo.hub import BUNDLED_DIR, mirror_repo_dir, sha256_file
    from fixnorm_zoo.zoo.registry import REGISTRY_FILE, Registry

    registry = Registry(REGISTRY_FILE)
    chosen = {registry.get(n).name for n in args.names}
    for info in registry.models():
        hub = info.hub
        target = mirror_repo_dir(BUNDLED_DIR, hub.repo_id) / hub.filename if hub.repo_id else None
        if info.name in chosen:
            if info.status != "published" or not hub.sha256:
                print(f"error: {info.name} has no published weights to bundle", file=sys.stderr)
                return 1
            source = mirror_repo_dir(args.mirror, hub.repo_id) / hub.filename
            if not source.is_file() or sha256_file(source) != hub.sha256:
                print(
                    f"error: {source} is missing or is not the registry's sha256 for {info.name}",
                    file=sys.stderr,
                )
                return 1
            target.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(target, source.read_bytes())
            print(f"bundled {info.name}: {target.relative_to(ROOT)} ({hub.size} bytes)")
        elif target is not None and target.is_file() and hub.bundled:
            target.unlink()  # a copy this tool made earlier: the entry is no longer bundled
            if not any(target.parent.iterdir()):
                target.parent.rmdir()
        if hub.bundled != (info.name in chosen):
            registry.upsert(
                dataclasses.replace(info, hub=dataclasses.replace(hub, bundled=info.name in chosen))
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
