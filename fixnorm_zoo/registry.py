"""The zoo as data: ``zoo.json`` beside this module lists every model, and this module looks names up in it.

Why a data file: publishing writes the measured numbers, the pinned Hub revision and the weights' sha256 back into
it, and reviewers read one diff. ``FIXNORM_ZOO_REGISTRY=/path/zoo.json`` points at another file (a fork's zoo, or
a test's). Imports nothing heavy.
"""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from fixnorm_zoo.errors import FixNormZooError, UnknownModelError

REGISTRY_FILE = Path(__file__).resolve().parent / "zoo.json"
STATUSES = ("recipe", "published")


@dataclass(frozen=True)
class HubFile:
    """Where a model's weights live and how to know them: pinned commit and full sha256 (the Hub checks sizes,
    not hashes)."""

    repo_id: str | None = None
    revision: str | None = None  # commit sha; None for a model published to a local mirror only
    filename: str = "model.safetensors"
    size: int | None = None
    sha256: str | None = None


@dataclass(frozen=True)
class ModelInfo:
    """One zoo entry. ``top1``/``top5`` are measured (by ``fixnorm-zoo publish``'s re-evaluation) with
    ``eval_setting``; ``paper_top1`` is what the FixNorm paper reports, where it reports one."""

    name: str
    architecture: str  # a stock timm name
    dataset: Literal["imagenet", "fashion_mnist"]
    recipe: str  # under recipes/, e.g. "fashion_mnist/resnet18_fixnorm"
    method: Literal["fixnorm", "wd"] = "fixnorm"
    status: Literal["recipe", "published"] = "recipe"
    aliases: tuple[str, ...] = ()
    model_args: dict[str, Any] = field(default_factory=dict)
    num_classes: int = 1000
    in_chans: int = 3
    params_m: float | None = None
    gmacs: float | None = None
    eval_setting: dict[str, Any] = field(
        default_factory=dict
    )  # input_size, crop_pct, interpolation, mean, std
    paper_top1: float | None = None
    top1: float | None = None
    top5: float | None = None
    eval_split: str | None = None
    baseline_of: str | None = None  # a weight-decay twin names the FixNorm model it is the baseline of
    hub: HubFile = field(default_factory=HubFile)
    license: str = "apache-2.0"
    notes: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["aliases"] = list(self.aliases)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelInfo:
        allowed = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - allowed
        if unknown:
            raise FixNormZooError(f"registry entry {d.get('name')!r}: unknown fields {sorted(unknown)}")
        d = dict(d)
        d["aliases"] = tuple(d.get("aliases", ()))
        d["hub"] = HubFile(**d.get("hub", {}))
        if d.get("status", "recipe") not in STATUSES:
            raise FixNormZooError(f"registry entry {d['name']!r}: status {d['status']!r} not in {STATUSES}")
        return cls(**d)

    @property
    def train_command(self) -> str:
        return f"fixnorm-zoo train {self.recipe}"


def registry_path() -> Path:
    return Path(os.environ.get("FIXNORM_ZOO_REGISTRY") or REGISTRY_FILE)


def _read(path: Path | None = None) -> list[ModelInfo]:
    path = path or registry_path()
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as e:
        raise FixNormZooError(f"zoo registry {path} does not exist (FIXNORM_ZOO_REGISTRY?)") from e
    return [ModelInfo.from_dict(d) for d in data["models"]]


def list_models(pattern: str = "*") -> list[str]:
    """Zoo model names matching a shell-style ``pattern`` (aliases not listed), sorted."""
    return sorted(m.name for m in _read() if fnmatch.fnmatchcase(m.name, pattern))


def model_info(name: str) -> ModelInfo:
    """The registry entry of ``name`` (or one of its aliases).

    Raises:
        UnknownModelError: no such model; the message lists close matches.
    """
    models = _read()
    for m in models:
        if name == m.name or name in m.aliases:
            return m
    names = [m.name for m in models] + [a for m in models for a in m.aliases]
    close = difflib.get_close_matches(name, names, n=5, cutoff=0.5)
    hint = f"close matches: {close}" if close else f"known: {sorted(m.name for m in models)}"
    raise UnknownModelError(f"no zoo model named {name!r}; {hint} (fixnorm-zoo list shows all)")


def upsert(info: ModelInfo, *, path: Path | None = None) -> None:
    """Add or replace ``info``'s entry and write the file atomically (publish's write-back)."""
    path = path or registry_path()
    data = json.loads(path.read_text()) if path.exists() else {"models": []}
    models = [d for d in data["models"] if d["name"] != info.name]
    models.append(info.to_dict())
    data["models"] = sorted(models, key=lambda d: (d["dataset"], d["name"]))
    write_registry(data, path=path)


def write_registry(data: dict, *, path: Path | None = None) -> None:
    """Write the registry file's ``{"models": [...]}`` atomically (a reader never sees half a file)."""
    path = path or registry_path()
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)
