"""Rewrite the config.json of each published repo in the release folder (zoo_mirror/) from its registry entry:
timm's format, with the zoo's pretrained config only (eval setting, classes, label names, license).

Why: repos published before the package built its models with timm's ``pretrained_cfg_overlay`` kept timm's
ImageNet fields (``test_input_size`` 288, ``tag``, ``paper_ids``) in their config.json, and timm's validate.py then
evaluates the 28 px ResNet at 288 px (8.5% top-1). The weights are untouched (the registry pins their sha256).

    .venv/bin/python tools/release_configs.py [--release zoo_mirror] [--write]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--release", type=Path, default=ROOT / "zoo_mirror")
    ap.add_argument(
        "--write", action="store_true", help="replace the config.json files (else: show the changes)"
    )
    args = ap.parse_args()
    from timm.models import save_for_hf  # what publish writes config.json with (weights go to a temp folder)

    from fixnorm_zoo.data.transforms import EVAL_KEYS
    from fixnorm_zoo.utils.atomic import atomic_write_text
    from fixnorm_zoo.zoo.pretrained import load
    from fixnorm_zoo.zoo.registry import Registry

    for info in Registry().models():
        repo = args.release / (info.hub.repo_id or "")
        if info.status != "published" or not (repo / "config.json").is_file():
            continue
        model = load(info.name, mirror=args.release)
        labels = model.pretrained_cfg.get("label_names")
        with tempfile.TemporaryDirectory() as tmp:
            save_for_hf(
                model,
                tmp,
                safe_serialization=True,
                model_args=dict(info.model_args),
                model_config={"label_names": list(labels)} if labels else None,
                data_config={k: model.pretrained_cfg[k] for k in EVAL_KEYS},
            )
            new = Path(f"{tmp}/config.json").read_text()
        old = (repo / "config.json").read_text()
        dropped = sorted(set(json.loads(old)["pretrained_cfg"]) - set(json.loads(new)["pretrained_cfg"]))
        print(f"{info.name:<28} {'unchanged' if old == new else f'drops {dropped}'}")
        if args.write and old != new:
            atomic_write_text(repo / "config.json", new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
