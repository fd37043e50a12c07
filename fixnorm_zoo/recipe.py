"""Training recipes: small YAML files validated into a typed dataclass before any work starts.

A recipe may start with ``inherit: other.yaml`` (a path relative to it) and change a few fields: that is how each
weight-decay twin says it differs from its FixNorm recipe only in the method. ``--set key=value`` overrides are
parsed as YAML scalars and validated like the file.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from fixnorm_zoo.errors import RecipeError
from fixnorm_zoo.utils.names import NAME, NAME_RULE
from fixnorm_zoo.utils.preemption import signal_numbers
from fixnorm_zoo.utils.resources import package_data_dir

RECIPES_DIR = package_data_dir("recipes")
"""The shipped recipes: the repository's ``recipes/`` folder, installed as the ``fixnorm_zoo.recipes`` package
(package data: an installed wheel has them too)."""


@dataclass
class Recipe:
    """One training run, fully specified. Field comments say why a field exists; the YAML files say where each
    value comes from."""

    name: str
    model: str  # timm architecture name
    dataset: Literal["fashion_mnist", "imagenet"]
    method: Literal["fixnorm", "wd"] = "fixnorm"
    model_args: dict[str, Any] = field(
        default_factory=dict
    )  # extra timm create_model kwargs (travel to config.json)
    num_classes: int = 10
    # data and eval preprocessing (becomes the model's pretrained_cfg)
    data_dir: str | None = None
    input_size: list[int] = field(default_factory=lambda: [1, 28, 28])
    crop_pct: float = 1.0
    interpolation: Literal["bilinear", "bicubic", "nearest"] = "bilinear"
    mean: list[float] = field(default_factory=lambda: [0.2860])
    std: list[float] = field(default_factory=lambda: [0.3530])
    train_subset: int | None = None  # first N training samples only (quick runs and tests)
    hf_streaming: bool = False  # data_dir hf:...: stream the dataset, each process reading its own part
    # last N training samples held out and scored instead of the test set: tuning must never see the test set
    holdout: int = 0
    # schedule
    epochs: int = 10
    batch_size: int = 128  # global batch: per-process batch = batch_size / processes / grad_accum_steps
    # muon: torch.optim.Muon on the conv/linear filters (flattened to out x rest matrices), SGD with this recipe's
    # momentum on the classifier, biases and norm affines, at lr * aux_lr_scale (airbench94_muon's split)
    # sgdc: timm's SGD with corrected decoupled weight decay (the decay scaled by lr / peak lr), for the twin
    optimizer: Literal["sgd", "sgdc", "rmsproptf", "adamw", "muon"] = "sgd"
    lr: float = 0.1  # peak LR for the global batch
    aux_lr_scale: float = 1.0  # optimizer muon only: the SGD part's LR relative to lr
    momentum: float = 0.9
    nesterov: bool = True
    opt_eps: float | None = None
    sched: Literal["cosine", "step"] = "cosine"
    warmup_epochs: float = 0.0
    warmup_lr: float = 1e-5
    min_lr: float = 0.0
    decay_epochs: float = 2.4  # step schedule only
    decay_rate: float = 0.97  # step schedule only
    # FixNorm (method: fixnorm) / weight decay (method: wd)
    fc_norm: float | None = None
    invariant_norm: float | None = None
    fc_norm_mode: Literal["matrix", "rows"] = "matrix"
    weight_decay: float = 0.0
    # method wd: which weights get no decay. norm_bias: norm-layer affines and biases (timm's and torchvision's
    # default); norm_bias_depthwise: also depthwise conv filters (the MobileNet authors' advice; OpenMMLab's mobile
    # configs set their decay to 0)
    wd_exclude: Literal["norm_bias", "norm_bias_depthwise"] = "norm_bias"
    # regularization and augmentation
    label_smoothing: float = 0.0
    hflip: float = 0.5
    # random: each image flipped with probability hflip every epoch; alternate (airbench's): a random half flipped in
    # the first epoch, then each image flipped in every other epoch, so consecutive epochs see both views (Fashion-
    # MNIST in memory only, hflip 0.5)
    hflip_mode: Literal["random", "alternate"] = "random"
    crop_pad: int = 2  # Fashion-MNIST: random crop after zero padding
    auto_augment: str | None = None  # timm's string, e.g. "rand-m9-mstd0.5" (ImageNet)
    reprob: float = 0.0  # random erasing probability
    mixup: float = 0.0
    cutmix: float = 0.0
    drop_rate: float = 0.0
    drop_path_rate: float = 0.0
    model_ema: bool = False
    model_ema_decay: float = 0.9998
    # timm ModelEmaV3's warm-up: decay 1 - (1 + step)^(-2/3), capped at model_ema_decay, so a run of a few thousand
    # updates averages over its last few hundred instead of being dominated by the random init
    model_ema_warmup: bool = False
    # BatchNorm: running-statistics momentum (PyTorch's convention, default 0.1; None keeps the model's), and
    # freeze_bn_scale: every BatchNorm weight (gamma) held at 1 and left out of the optimizer, so each conv before
    # a BN is exactly scale-invariant and the whole network's function is set by the directions FixNorm moves
    bn_momentum: float | None = None
    freeze_bn_scale: bool = False
    # BatchNorm biases in a parameter group of their own at lr * bn_bias_lr_scale (airbench trains its BN biases at
    # a much higher LR than its filters); 1: the same LR as the rest
    bn_bias_lr_scale: float = 1.0
    # the stem conv's filters set once, before training, from the first 5,000 training images: the top principal
    # directions of their patches, each with its negative, then frozen (airbench's patch-whitening layer). Needs a
    # stem conv with an even number of filters, at most twice its patch size (Fashion-MNIST in memory only)
    whiten_stem: bool = False
    # engine
    # amp, grad_accum_steps: None (unset) follows the launcher (accelerate launch --mixed_precision, accelerate
    # config; accelerate 1.15 exports --gradient_accumulation_steps only on its DeepSpeed path, so set
    # grad_accum_steps here); a value set here wins over the launcher
    amp: Literal["no", "bf16", "fp16"] | None = None
    channels_last: bool = False
    grad_accum_steps: int | None = None
    clip_grad: float | None = None
    sync_bn: bool = False
    seed: int = 0
    log_with: Literal["none", "tensorboard"] = (
        "none"  # accelerate trackers (pip install tensorboard), in RUN_DIR
    )
    workers: int = 4  # ImageNet data loader workers per process
    keep_last: int = 2  # checkpoints kept besides the best
    # mid-epoch checkpoints (a preempted or killed job loses at most this much): every N optimizer updates and/or
    # every M minutes of training, each replacing the previous mid-epoch one; None: at epoch ends only
    checkpoint_every_steps: int | None = None
    checkpoint_every_minutes: float | None = None
    # signals that stop the run at the next update with a checkpoint (exit 75); SIGINT (Ctrl-C) always does (exit 130)
    preempt_signals: list[str] = field(default_factory=lambda: ["SIGTERM", "SIGUSR1"])
    log_every: int = 50  # steps between progress-bar metric updates

    def __post_init__(self) -> None:
        _check_types(self)
        _check_ranges(self)
        if not NAME.fullmatch(self.name):
            raise RecipeError(
                f"recipe field name={self.name!r}: a name is {NAME_RULE}: it names the default run folder runs/NAME "
                "and the zoo entry"
            )
        try:
            signal_numbers(self.preempt_signals)
        except ValueError as e:
            raise RecipeError(f"recipe field preempt_signals={self.preempt_signals!r}: {e}") from None
        for broken, message in RULES:
            if broken(self):
                raise RecipeError(message(self))

    @property
    def in_chans(self) -> int:
        return self.input_size[0]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=False)


MAX_INHERIT_DEPTH = 32
MAX_CLASSES = 1_000_000
MAX_SIDE = 4096
MAX_RECIPE_BYTES = 1 << 20

RANGES: tuple[tuple[tuple[str, ...], Callable[[Any], bool], str], ...] = (
    (
        (
            "epochs",
            "batch_size",
            "lr",
            "grad_accum_steps",
            "num_classes",
            "keep_last",
            "log_every",
            "fc_norm",
            "invariant_norm",
            "crop_pct",
            "warmup_lr",
            "opt_eps",
            "clip_grad",
            "aux_lr_scale",
            "bn_bias_lr_scale",
            "checkpoint_every_steps",
            "checkpoint_every_minutes",
        ),
        lambda v: v > 0,
        "must be > 0",
    ),
    (
        ("label_smoothing", "reprob", "drop_rate", "drop_path_rate", "momentum", "model_ema_decay"),
        lambda v: 0.0 <= v < 1.0,
        "must be in [0, 1)",
    ),
    (("hflip",), lambda v: 0.0 <= v <= 1.0, "a probability, in [0, 1]"),
    (("bn_momentum",), lambda v: 0.0 < v <= 1.0, "PyTorch's convention, in (0, 1] (0.1 is its default)"),
    (
        ("warmup_epochs", "min_lr", "weight_decay", "workers", "seed", "crop_pad", "mixup", "cutmix"),
        lambda v: v >= 0,
        "must be >= 0",
    ),
    (("seed",), lambda v: v < 2**32, "must be below 2**32 (numpy's and CUDA's seed range)"),
    (("num_classes",), lambda v: v <= MAX_CLASSES, f"at most {MAX_CLASSES:,}"),
    (
        ("train_subset",),
        lambda v: v >= 1,
        "the number of training images to use (>= 1), or null for all of them",
    ),
)
"""One field's range: (fields, the test its value must pass, what the message says). A field left at None passes."""

RULES: tuple[tuple[Callable[[Recipe], bool], Callable[[Recipe], str]], ...] = (
    (
        lambda r: r.hflip_mode == "alternate" and (r.dataset != "fashion_mnist" or r.hflip != 0.5),
        lambda r: (
            f"recipe field hflip_mode='alternate' (dataset {r.dataset}, hflip {r.hflip}): alternating flips "
            "are built for the in-memory Fashion-MNIST loader with hflip 0.5; use hflip_mode: random"
        ),
    ),
    (
        lambda r: r.bn_bias_lr_scale != 1.0 and r.optimizer == "muon",
        lambda r: (
            f"recipe field bn_bias_lr_scale={r.bn_bias_lr_scale!r} with optimizer: muon: Muon's SGD part sets "
            "its own LR (aux_lr_scale); leave bn_bias_lr_scale at 1"
        ),
    ),
    (
        lambda r: r.whiten_stem and r.dataset != "fashion_mnist",
        lambda r: (
            f"recipe field whiten_stem (dataset {r.dataset}): the whitening is computed from the in-memory "
            "Fashion-MNIST images; set whiten_stem: false"
        ),
    ),
    (
        lambda r: r.method == "fixnorm" and bool(r.weight_decay),
        lambda r: (
            f"recipe field weight_decay={r.weight_decay!r} with method: fixnorm: FixNorm replaces weight decay;"
            " set weight_decay: 0, or method: wd for the weight-decay twin"
        ),
    ),
    (
        lambda r: r.method == "fixnorm" and (r.wd_exclude != "norm_bias" or r.optimizer == "sgdc"),
        lambda r: (
            f"recipe fields wd_exclude={r.wd_exclude!r}, optimizer={r.optimizer!r}: weight-decay settings; "
            "FixNorm has no weight decay (use optimizer: sgd and leave wd_exclude unset, or method: wd)"
        ),
    ),
    (
        lambda r: r.method == "wd" and (r.fc_norm is not None or r.invariant_norm is not None),
        lambda r: "recipe fields fc_norm/invariant_norm are FixNorm's; with method: wd leave them unset",
    ),
    (
        lambda r: len(r.input_size) != 3 or len(r.mean) != r.input_size[0] or len(r.std) != r.input_size[0],
        lambda r: (
            f"recipe fields input_size={r.input_size}, mean={r.mean}, std={r.std}: input_size is "
            "[channels, height, width] and mean/std have one value per channel"
        ),
    ),
    (
        lambda r: any(v <= 0 for v in r.input_size) or any(v <= 0 for v in r.std),
        lambda r: (
            f"recipe fields input_size={r.input_size}, std={r.std}: sizes and standard deviations must be"
            " > 0 (std divides the image)"
        ),
    ),
    (
        lambda r: any(isinstance(v, int) and not 0 < v <= MAX_SIDE for v in r.input_size),
        lambda r: f"recipe field input_size={r.input_size}: channels and sides must be from 1 to {MAX_SIDE}",
    ),
    (
        lambda r: any(not 0.0 <= v <= 1.0 for v in r.mean) or any(v > 1.0 for v in r.std),
        lambda r: (
            f"recipe fields mean={r.mean}, std={r.std}: on the 0-1 pixel scale (timm's convention, e.g. "
            "ImageNet's mean [0.485, 0.456, 0.406]): each mean in [0, 1], each std in (0, 1]"
        ),
    ),
    (
        lambda r: r.min_lr > r.lr,
        lambda r: f"recipe fields min_lr={r.min_lr} > lr={r.lr}: the schedule ends at min_lr <= lr",
    ),
    (
        lambda r: r.warmup_epochs > r.epochs,
        lambda r: (
            f"recipe fields warmup_epochs={r.warmup_epochs} > epochs={r.epochs}: warm-up cannot outlast"
            " training"
        ),
    ),
    (
        lambda r: r.holdout < 0 or bool(r.holdout and r.dataset != "fashion_mnist"),
        lambda r: (
            f"recipe field holdout={r.holdout!r}: a held-out validation split (N >= 0 training images) is"
            " implemented for dataset: fashion_mnist; ImageNet recipes score the validation split"
        ),
    ),
    (
        lambda r: r.hf_streaming and not (r.data_dir or "").startswith("hf:"),
        lambda r: (
            f"recipe field hf_streaming=True needs data_dir: hf:NAME (a Hugging Face dataset); got {r.data_dir!r}"
        ),
    ),
    (
        lambda r: bool(r.grad_accum_steps and r.batch_size % r.grad_accum_steps),
        lambda r: f"batch_size={r.batch_size} is not divisible by grad_accum_steps={r.grad_accum_steps}",
    ),
)
"""Rules between fields: (when the recipe breaks it, the message). Checked in order after the ranges."""


def _check_ranges(recipe: Recipe) -> None:
    """No field holds NaN or inf (``.nan`` parses as a YAML float), and each field is in its :data:`RANGES`."""
    for f in dataclasses.fields(recipe):
        values = getattr(recipe, f.name)
        for v in values if isinstance(values, list) else [values]:
            if isinstance(v, float) and not math.isfinite(v):
                raise RecipeError(f"recipe field {f.name}={values!r}: must be a finite number")
    for names, ok, what in RANGES:
        for name in names:
            value = getattr(recipe, name)
            if value is not None and not ok(value):
                raise RecipeError(f"recipe field {name}={value!r}: {what}")


def _type_ok(value: Any, tp: Any) -> bool:
    origin = typing.get_origin(tp)
    if tp is Any:
        return True
    if origin is Literal:
        return value in typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, t) for t in typing.get_args(tp))
    if tp is type(None):
        return value is None
    if origin is list:
        (item,) = typing.get_args(tp)
        return isinstance(value, list) and all(_type_ok(v, item) for v in value)
    if origin is dict:
        return isinstance(value, dict)
    if tp is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, tp)


def _describe(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(t) for t in typing.get_args(tp))
    if tp is type(None):
        return "null"
    if origin is list:
        return "a list of " + _describe(typing.get_args(tp)[0])
    return getattr(tp, "__name__", str(tp))


def _check_types(recipe: Recipe) -> None:
    hints = typing.get_type_hints(Recipe)
    for f in dataclasses.fields(recipe):
        value = getattr(recipe, f.name)
        if f.name == "amp" and value is False:  # YAML 1.1 reads `amp: no` (as the README writes it) as false
            recipe.amp = "no"
            continue
        # YAML "1" or "1e-5" (a string to YAML 1.1) for a float field is fine
        if hints[f.name] in (float, float | None) and (number := _as_float(value)) is not None:
            setattr(recipe, f.name, number)
            continue
        if hints[f.name] == list[float] and isinstance(value, list):  # ["1e30"]: YAML 1.1 strings, as above
            numbers = [_as_float(v) for v in value]
            if all(n is not None for n in numbers):
                setattr(recipe, f.name, numbers)
                continue
        if not _type_ok(value, hints[f.name]):
            raise RecipeError(f"recipe field {f.name}={value!r}: expected {_describe(hints[f.name])}")


def _as_float(value: Any) -> float | None:
    """An int, or a string in exponent notation such as ``4e-05``: PyYAML (YAML 1.1) reads ``4e-05`` without a dot
    as a string, yet it is how Python prints small floats, so ``--set weight_decay=4e-05`` must work."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _refuse_aliases(text: str, *, where: str) -> None:
    """YAML anchors and aliases are refused before anything is built: a 300-byte 'billion laughs' document expands
    to gigabytes (and a recipe has no use for them)."""
    import yaml

    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise RecipeError(
                f"{where}: YAML anchors/aliases (& and *) are not accepted in recipes; write the values out"
            )


def _read_yaml(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    import yaml

    if not path.is_file():
        raise RecipeError(
            f"recipe file {path} does not exist; the shipped recipes: fixnorm-zoo list --recipes"
        )
    if path in seen:
        raise RecipeError(f"recipe {path} inherits from itself through {[str(p) for p in seen]}")
    if len(seen) >= MAX_INHERIT_DEPTH:
        raise RecipeError(
            f"recipe {path}: inherit: chains past {MAX_INHERIT_DEPTH} files ({seen[0]} ...): flatten the recipe"
        )
    if path.stat().st_size > MAX_RECIPE_BYTES:
        raise RecipeError(f"recipe {path} is over {MAX_RECIPE_BYTES} bytes: a recipe is a short YAML file")
    try:
        text = path.read_text()
        _refuse_aliases(text, where=f"recipe {path}")
        data = yaml.safe_load(text) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise RecipeError(
            f"recipe {path} is not valid YAML{where}: {getattr(e, 'problem', None) or e}"
        ) from e
    if not isinstance(data, dict):
        raise RecipeError(f"recipe {path} must be a mapping of field: value")
    parent = data.pop("inherit", None)
    if parent is None:
        return data
    return {**_read_yaml(_inherited_path(path, parent), (*seen, path)), **data}


def _inherited_path(path: Path, parent: Any) -> Path:
    """``inherit:`` names a YAML file in the inheriting recipe's own folder (or below it), or a shipped recipe
    (``fashion_mnist/resnet9s_fixnorm``); it may not climb out of that folder with ``..`` or an absolute path."""
    if not isinstance(parent, str) or not parent:
        raise RecipeError(
            f"recipe {path}: inherit: {parent!r} must name a recipe file, e.g. inherit: base.yaml"
        )
    here = path.parent.resolve()
    candidate = (here / parent).resolve()
    if candidate.is_relative_to(here) and not Path(parent).is_absolute() and candidate.is_file():
        return candidate
    shipped = [RECIPES_DIR / parent, RECIPES_DIR / f"{parent}.yaml"]
    for p in shipped:
        if (
            p.resolve().is_relative_to(RECIPES_DIR.resolve())
            and p.is_file()
            and ".." not in Path(parent).parts
        ):
            return p.resolve()
    if candidate.is_relative_to(here) and not Path(parent).is_absolute():
        raise RecipeError(
            f"recipe {path}: inherit: {parent!r} is neither a file beside it nor a shipped recipe "
            "(fixnorm-zoo list --recipes)"
        )
    raise RecipeError(
        f"recipe {path}: inherit: {parent!r} leaves the recipe's folder {here}; inherit a file beside it or a "
        "shipped recipe (fixnorm-zoo list --recipes)"
    )


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["lr=0.2", "model_args.depth_multiplier=1.2"]`` -> a nested dict, values parsed as YAML scalars."""
    import yaml

    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise RecipeError(f"override {item!r}: write it as key=value, e.g. --set lr=0.2")
        target = out
        *parents, leaf = key.split(".")
        for p in parents:
            target = target.setdefault(p, {})
        try:
            _refuse_aliases(raw, where=f"override {item!r}")
            target[leaf] = yaml.safe_load(raw)
        except yaml.YAMLError as e:
            raise RecipeError(
                f"override {item!r}: {raw!r} is not a YAML value ({getattr(e, 'problem', None) or e}); quote it or "
                "close its brackets, e.g. --set lr=0.1 or --set 'widths=[16,32,64,128]'"
            ) from None
    return out


def shipped_recipes() -> list[str]:
    """Names of the recipes shipped with the package, e.g. ``fashion_mnist/resnet9s_fixnorm``."""
    return sorted(str(p.relative_to(RECIPES_DIR).with_suffix("")) for p in RECIPES_DIR.rglob("*.yaml"))


def shipped_recipe_for(run_name: str) -> str | None:
    """The shipped recipe whose ``name`` field is ``run_name`` (what a run directory records), if any."""
    for ref in shipped_recipes():
        if _read_yaml(RECIPES_DIR / f"{ref}.yaml").get("name") == run_name:
            return ref
    return None


def resolve_recipe_path(recipe: str | Path) -> Path:
    """A file path, or the name of a recipe shipped with the package such as ``fashion_mnist/resnet18_fixnorm``
    (``recipes/fashion_mnist/resnet18_fixnorm.yaml``)."""
    path = Path(recipe)
    if path.is_file():
        return path.resolve()
    for candidate in (RECIPES_DIR / path, RECIPES_DIR / f"{path}.yaml"):
        if candidate.is_file():
            return candidate.resolve()
    known = shipped_recipes()

    close = difflib.get_close_matches(str(recipe), known, n=3, cutoff=0.4)
    hint = f"; did you mean {close}?" if close else f"; known recipes: {known}"
    raise RecipeError(f"recipe {str(recipe)!r} is neither a file nor a name under {RECIPES_DIR}{hint}")


def load_recipe(recipe: str | Path | dict[str, Any], *, overrides: dict[str, Any] | None = None) -> Recipe:
    """Read, merge and validate a recipe.

    Args:
        recipe: a YAML path, a name under ``recipes/``, or a dict (e.g. a saved run's ``recipe.yaml``).
        overrides: fields to replace (``model_args`` is merged key by key).

    Raises:
        RecipeError: an unknown field (the message lists the allowed ones), an ill-typed or out-of-range value.
    """
    data = dict(recipe) if isinstance(recipe, dict) else _read_yaml(resolve_recipe_path(recipe))
    for key, value in (overrides or {}).items():
        if key == "model_args" and isinstance(value, dict):
            data["model_args"] = {**data.get("model_args", {}), **value}
        else:
            data[key] = value
    allowed = [f.name for f in dataclasses.fields(Recipe)]
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        hints = {u: difflib.get_close_matches(u, allowed, n=1) for u in unknown}
        said = ", ".join(f"{u!r}" + (f" (did you mean {h[0]!r}?)" if h else "") for u, h in hints.items())
        raise RecipeError(f"unknown recipe field(s) {said}; allowed fields: {allowed}")
    missing = [
        f.name
        for f in dataclasses.fields(Recipe)
        if f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
        and f.name not in data
    ]
    if missing:
        raise RecipeError(f"recipe is missing required field(s) {missing}")
    return Recipe(**data)


def recipe_changes(
    recipe: Recipe, saved_path: Path, *, named: tuple[str, ...], run_dir: Path
) -> dict[str, list[Any]]:
    """Fields where ``recipe`` differs from a run's saved recipe (``saved_path``): ``{field: [was, now]}``. A
    resumed run may change only the ``named`` fields; empty when the run saved no recipe yet.

    Raises:
        RecipeError: a changed field that is not named.
    """
    if not saved_path.is_file():
        return {}
    saved = load_recipe(str(saved_path)).to_dict()
    now = recipe.to_dict()
    changes = {k: [saved[k], now[k]] for k in now if saved.get(k) != now[k]}
    unnamed = sorted(k for k in changes if k not in named)
    if unnamed:
        said = ", ".join(f"{k}: {changes[k][0]!r} -> {changes[k][1]!r}" for k in unnamed)
        raise RecipeError(
            f"--resume {run_dir}: the recipe differs from the run's {saved_path.name} ({said}). Resume with the run's "
            f"own settings (fixnorm-zoo train {saved_path} --resume --output {run_dir}), or name each change with "
            "--set (it is logged with the epoch it starts at; the saved recipe keeps the run's original)"
        )
    return changes
