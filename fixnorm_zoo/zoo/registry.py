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
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from fixnorm_zoo.errors import FixNormZooError, RegistryError, RegistryNotFound, UnknownModelError
from fixnorm_zoo.utils.names import NAME, NAME_RULE
from fixnorm_zoo.utils.resources import PACKAGE_DIR

REGISTRY_FILE = PACKAGE_DIR / "zoo.json"
STATUSES = ("recipe", "published", "retired")
"""recipe: no weights yet; published: weights pinned by sha256; retired: an older model kept on record (its numbers,
its sha256) but no longer served, ``superseded_by`` naming what replaced it."""


@dataclass(frozen=True)
class HubFile:
    """Where a model's weights live and how to know them: pinned commit and full sha256 (the Hub checks sizes,
    not hashes)."""

    repo_id: str | None = None
    revision: str | None = None  # commit sha; None for a model published to a local mirror only
    filename: str = "model.safetensors"
    size: int | None = None
    sha256: str | None = None
    # the weights also ship inside the package (fixnorm_zoo/bundled/ORG/NAME/FILE): small current baselines only,
    # so that `pip install` alone gives a working model; checked by the same sha256
    bundled: bool = False
    # sha256 over the files the last push uploaded (names and contents): a re-push of an unchanged release folder
    # is skipped instead of making an empty commit per repo
    release_sha256: str | None = None


@dataclass(frozen=True)
class ModelInfo:
    """One zoo entry. ``top1``/``top5`` are measured (by ``fixnorm-zoo publish``'s re-evaluation) with
    ``eval_setting``; ``paper_top1`` is what the FixNorm paper reports, where it reports one."""

    name: str
    architecture: str  # a timm name (stock, or registered by fixnorm_zoo.models.resnet9s)
    dataset: Literal["imagenet", "fashion_mnist"]
    recipe: str  # a recipe shipped with the package, e.g. "fashion_mnist/resnet18_fixnorm"
    method: Literal["fixnorm", "wd"] = "fixnorm"
    status: Literal["recipe", "published", "retired"] = "recipe"
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
    superseded_by: str | None = None  # a retired entry: the zoo name that replaced it

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["aliases"] = list(self.aliases)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelInfo:
        """An entry from its JSON, checked against the schema (names, types, the hub file name) so that a damaged
        or hostile registry is one error naming the entry, never a traceback or a path out of a mirror.

        Raises:
            RegistryError: an unknown field, or a field of the wrong type or form.
        """
        if not isinstance(d, dict):
            raise RegistryError(f"registry entry {d!r}: expected a JSON object with name, architecture, ...")
        allowed = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - allowed
        if unknown:
            raise RegistryError(f"registry entry {d.get('name')!r}: unknown fields {sorted(unknown)}")
        _check_entry(d)
        d = dict(d)
        d["aliases"] = tuple(d.get("aliases", ()))
        d["hub"] = HubFile(**d.get("hub", {}))
        if d.get("status", "recipe") not in STATUSES:
            raise RegistryError(f"registry entry {d['name']!r}: status {d['status']!r} not in {STATUSES}")
        return cls(**d)

    @property
    def tag(self) -> str | None:
        """The timm pretrained tag of a name spelled ``architecture.tag`` (``resnet9s.fixnorm_fmnist`` ->
        ``fixnorm_fmnist``), as timm names its weights (``resnet50.a1_in1k``); None for a name of another form."""
        arch, dot, tag = self.name.partition(".")
        return tag if dot and arch == self.architecture and tag else None

    @property
    def train_command(self) -> str:
        return f"fixnorm-zoo train {self.recipe}"


MAX_REGISTRY_BYTES = 16 << 20


def _check_entry(d: dict[str, Any]) -> None:
    name = d.get("name")
    where = f"registry entry {name!r}"
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise RegistryError(f"{where}: a name is {NAME_RULE}")
    aliases = d.get("aliases", [])
    if not isinstance(aliases, list | tuple) or not all(
        isinstance(a, str) and NAME.fullmatch(a) for a in aliases
    ):
        raise RegistryError(f"{where}: aliases must be a list of names ({NAME_RULE})")
    for key in ("architecture", "dataset", "recipe"):
        if not isinstance(d.get(key), str) or not d[key]:
            raise RegistryError(f"{where}: {key} must be a non-empty string")
    for key in ("num_classes", "in_chans"):
        value = d.get(key, 1)
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1_000_000:
            raise RegistryError(f"{where}: {key}={value!r} must be an integer from 1 to 1,000,000")
    setting = d.get("eval_setting", {})
    size = setting.get("input_size") if isinstance(setting, dict) else None
    if d.get("status") == "published" and not (
        isinstance(size, list) and len(size) == 3 and all(isinstance(v, int) and 0 < v <= 4096 for v in size)
    ):
        raise RegistryError(
            f"{where}: eval_setting.input_size must be [channels, height, width] (each 1-4096)"
        )
    hub = d.get("hub", {})
    if not isinstance(hub, dict):
        raise RegistryError(f"{where}: hub must be an object")
    filename = hub.get("filename", "model.safetensors")
    if not isinstance(filename, str) or not NAME.fullmatch(filename):
        raise RegistryError(f"{where}: hub.filename={filename!r} must be a plain file name (no '/', no '..')")
    for key in ("sha256", "release_sha256"):
        sha = hub.get(key)
        if sha not in (None, "") and not (isinstance(sha, str) and re.fullmatch(r"[0-9a-f]{64}", sha)):
            raise RegistryError(f"{where}: hub.{key} must be 64 lowercase hex digits")
    sha = hub.get("sha256")
    if d.get("status") == "published" and not sha:
        raise RegistryError(f"{where}: status published without a hub.sha256: the weights cannot be verified")
    size_bytes = hub.get("size")
    if size_bytes is not None and (
        isinstance(size_bytes, bool) or not isinstance(size_bytes, int) or size_bytes < 0
    ):
        raise RegistryError(f"{where}: hub.size must be a byte count")


def registry_path() -> Path:
    """The registry file named by ``$FIXNORM_ZOO_REGISTRY``, else the package's ``zoo.json`` (read-only data)."""
    return Path(os.environ.get("FIXNORM_ZOO_REGISTRY") or REGISTRY_FILE)


def user_registry_path() -> Path:
    """Where a user's publishes and pushes are recorded by default: ``$FIXNORM_ZOO_USER_REGISTRY``, else
    ``fixnorm_zoo/zoo.json`` beside the Hugging Face cache (``$HF_HOME``, default ``~/.cache/huggingface``). Never
    inside the installed package: site-packages is replaced on reinstall and may not be writable."""
    if os.environ.get("FIXNORM_ZOO_USER_REGISTRY"):
        return Path(os.environ["FIXNORM_ZOO_USER_REGISTRY"])
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    hf_home = os.environ.get("HF_HOME") or os.path.join(cache, "huggingface")
    return Path(hf_home) / "fixnorm_zoo" / "zoo.json"


class Registry:
    """The zoo's entries, read on each call (publishers may change them) and written atomically under a lock.

    Args:
        path: one ``zoo.json``, both read and written. Default: ``$FIXNORM_ZOO_REGISTRY`` when set (that file
            alone); else the package's ``zoo.json`` with the user's file (:func:`user_registry_path`) merged over
            it, an entry there replacing the package's entry of the same name, and writes going to the user's file.
    """

    def __init__(self, path: str | Path | None = None) -> None:
        if path is not None or os.environ.get("FIXNORM_ZOO_REGISTRY"):
            self.path = Path(path) if path is not None else registry_path()
            self.layers: tuple[Path, ...] = (self.path,)
        else:
            self.path = user_registry_path()
            self.layers = (REGISTRY_FILE, self.path)

    def __repr__(self) -> str:
        return f"Registry({str(self.path)!r})"

    def _data(self, path: Path | None = None) -> dict[str, Any]:
        path = path or self.path
        try:
            st = os.stat(path)
            if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_REGISTRY_BYTES:
                raise RegistryError(
                    f"zoo registry {path} is not a regular file of at most {MAX_REGISTRY_BYTES} bytes (a device, "
                    "FIFO or something huge): name a zoo.json"
                )
            data = json.loads(path.read_text())
        except FileNotFoundError as e:
            raise RegistryNotFound(
                f"zoo registry {path} does not exist: pass an existing zoo.json (or unset FIXNORM_ZOO_REGISTRY)"
            ) from e
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
            raise RegistryError(
                f"zoo registry {path} cannot be read ({e}): restore it from version control or a backup"
            ) from e
        if not isinstance(data, dict) or not isinstance(data.get("models"), list):
            raise RegistryError(f'zoo registry {path}: expected {{"models": [...]}} at the top level')
        return data

    def models(self) -> list[ModelInfo]:
        """Every entry, validated; a name or alias used twice (which would shadow another model) is refused."""
        merged: dict[str, ModelInfo] = {}
        for layer in self.layers:
            if (
                layer != self.layers[0] and layer.is_symlink() and not layer.exists()
            ):  # a dangling link or loop
                raise RegistryError(
                    f"zoo registry {layer} is a symlink to nothing that can be read (a loop, or a missing target): "
                    "make it a file, or remove it to start a new one"
                )
            if layer != self.layers[0] and not layer.exists():
                continue  # no user file yet: the package's entries alone
            in_layer: set[str] = set()
            for d in self._data(layer)["models"]:
                try:
                    m = ModelInfo.from_dict(d)
                except FixNormZooError as e:
                    raise RegistryError(f"zoo registry {layer}: {e}") from None
                except (TypeError, ValueError) as e:
                    name = d.get("name") if isinstance(d, dict) else d
                    raise RegistryError(f"zoo registry {layer}: entry {name!r} is malformed: {e}") from e
                if m.name in in_layer:
                    raise RegistryError(
                        f"zoo registry {layer}: the name {m.name!r} is used by both of two entries: each name and "
                        "alias must be unique"
                    )
                in_layer.add(m.name)
                # a later layer (the user's file) replaces the package's entry of that name
                merged[m.name] = m
        out = list(merged.values())
        owner: dict[str, str] = {}
        where = " + ".join(str(p) for p in self.layers)
        for m in out:
            for n in (m.name, *m.aliases):
                if n in owner:
                    raise RegistryError(
                        f"zoo registry {where}: the name {n!r} is used by both {owner[n]!r} and {m.name!r}: each "
                        "name and alias must be unique"
                    )
                owner[n] = m.name
        return out

    def select(self, pattern: str = "*", *, pretrained: bool = False) -> list[ModelInfo]:
        """Entries whose name (``architecture.tag``, timm's form) or one of whose aliases (the older names, e.g.
        ``fmnist_resnet9s``) matches a shell-style ``pattern``, sorted by name (one read of the file);
        ``pretrained=True``: only entries with published weights."""
        return sorted(
            (
                m
                for m in self.models()
                if any(fnmatch.fnmatchcase(n, pattern) for n in (m.name, *m.aliases))
                and (not pretrained or m.status == "published")
            ),
            key=lambda m: m.name,
        )

    def names(self, pattern: str = "*", *, pretrained: bool = False) -> list[str]:
        """Names of :meth:`select`'s entries."""
        return [m.name for m in self.select(pattern, pretrained=pretrained)]

    def get(self, name: str) -> ModelInfo:
        """The entry of ``name`` (or one of its aliases).

        Raises:
            UnknownModelError: no such model; the message lists close matches.
        """
        models = self.models()
        for m in models:
            if name == m.name or name in m.aliases:
                return m
        names = [m.name for m in models] + [a for m in models for a in m.aliases]
        close = difflib.get_close_matches(name, names, n=5, cutoff=0.5)
        hint = f"close matches: {close}" if close else f"known: {sorted(m.name for m in models)}"
        raise UnknownModelError(f"no zoo model named {name!r}; {hint} (fixnorm-zoo list shows all)")

    def twin_of(self, name: str) -> ModelInfo | None:
        """The other method's entry paired with ``name`` (``baseline_of`` either way), or None; a retired entry is
        no one's twin. Why here: ``publish`` and the release refresh both name a card's twin by its zoo name."""
        models = self.models()
        own = next((m for m in models if name == m.name or name in m.aliases), None)
        for other in models:
            paired = other.baseline_of == name or (own is not None and own.baseline_of == other.name)
            if paired and other.status != "retired":
                return other
        return None

    def by_repo_id(self, repo_id: str) -> ModelInfo:
        """The published entry whose weights live in Hub repo ``repo_id``.

        Raises:
            UnknownModelError: no entry publishes that repo.
        """
        for m in self.models():
            if (
                m.hub.repo_id == repo_id and m.status != "retired"
            ):  # a retired entry's repo now holds its successor
                return m
        raise UnknownModelError(
            f"hf-hub:{repo_id} is not a zoo repo in {self.path}; load it with timm.create_model('hf-hub:{repo_id}', "
            "pretrained=True), or name a zoo model (fixnorm-zoo list)"
        )

    def upsert(self, info: ModelInfo, *, replace: bool = True) -> None:
        """Add ``info``'s entry, or replace the entry of that name when ``replace``; atomic and locked, so
        concurrent publishers lose nothing.

        Raises:
            RegistryError: the entry exists and ``replace`` is False.
        """
        from fixnorm_zoo.utils.atomic import file_lock

        if len(self.layers) > 1:  # the user's file over the package's: its folder may not exist yet
            self.path.parent.mkdir(parents=True, exist_ok=True)
        with file_lock(self.path):
            data = self._data() if self.path.exists() else {"models": []}
            if not replace and any(d.get("name") == info.name for d in data["models"]):
                raise RegistryError(f"zoo registry {self.path} already has an entry {info.name!r}")
            models = [d for d in data["models"] if d.get("name") != info.name]
            models.append(info.to_dict())
            data["models"] = sorted(models, key=lambda d: (d["dataset"], d["name"]))
            self._write(data)

    def remove(self, name: str) -> None:
        """Drop the entry named ``name`` (atomic and locked, as :meth:`upsert`).

        Raises:
            UnknownModelError: there is no entry of that name.
        """
        from fixnorm_zoo.utils.atomic import file_lock

        with file_lock(self.path):
            data = self._data()
            models = [d for d in data["models"] if d.get("name") != name]
            if len(models) == len(data["models"]):
                raise UnknownModelError(f"zoo registry {self.path} has no entry {name!r}")
            data["models"] = models
            self._write(data)

    def write(self, data: dict[str, Any]) -> None:
        """Replace the whole file's ``{"models": [...]}`` (the registry tools), atomic and locked."""
        from fixnorm_zoo.utils.atomic import file_lock

        with file_lock(self.path):
            self._write(data)

    def _write(self, data: dict[str, Any]) -> None:
        from fixnorm_zoo.utils.atomic import atomic_write_text

        for d in data["models"]:
            ModelInfo.from_dict(d)  # never write an entry that cannot be read back
        atomic_write_text(self.path, json.dumps(data, indent=2) + "\n")


def list_models(pattern: str = "*", *, pretrained: bool = False) -> list[str]:
    """Zoo model names matching a shell-style ``pattern`` (aliases not listed), sorted; ``pretrained=True`` lists
    only those with published weights (as ``timm.list_models(pretrained=True)``)."""
    return Registry().names(pattern, pretrained=pretrained)


def model_info(name: str) -> ModelInfo:
    """The registry entry of ``name`` (or one of its aliases).

    Raises:
        UnknownModelError: no such model; the message lists close matches.
    """
    return Registry().get(name)


def upsert(info: ModelInfo, *, path: Path | None = None) -> None:
    """Add or replace ``info``'s entry in the registry file ``path`` (default: :func:`registry_path`)."""
    Registry(path).upsert(info)


def write_registry(data: dict, *, path: Path | None = None) -> None:
    """Write the registry file's ``{"models": [...]}`` atomically (a reader never sees half a file)."""
    Registry(path).write(data)
