"""Run one of timm's scripts (``validate.py``, ``train.py``, ``inference.py``) with fixnorm_zoo's architectures and
the zoo's pretrained tags registered, so the script's ``--model resnet9s...`` or ``hf-hub:`` id of a zoo repo
resolves::

    python -m fixnorm_zoo.timm_script validate.py --model hf-hub:fixnorm-zoo/fmnist_resnet9s --pretrained \\
        --in-chans 1 --dataset torch/fashion_mnist --split test --data-dir DIR

Why: timm's scripts build models by name from timm's registry; ``resnet9s`` is added to it by importing
``fixnorm_zoo.models.resnet9s``, which the script itself never does. The script runs as ``__main__`` with the rest of
the command line as its arguments, unchanged.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if argv else 2
    script = Path(argv[0])
    if not script.is_file():
        print(
            f"fixnorm_zoo.timm_script: error: {script} is not a file: give the path of timm's script (validate.py "
            "from a checkout of pytorch-image-models)",
            file=sys.stderr,
        )
        return 2
    import fixnorm_zoo.models.resnet9s  # noqa: F401  (registers resnet9s with timm)
    from fixnorm_zoo.zoo.timm_tags import register_timm_tags

    register_timm_tags()
    sys.argv = [str(script), *argv[1:]]
    sys.path.insert(0, str(script.resolve().parent))  # as `python validate.py` would
    runpy.run_path(str(script), run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(main())
