"""Weights in and out of the Hugging Face Hub (or a local mirror of it), checked by sha256.

Downloads go through huggingface_hub (its cache, progress bars, ``HF_HUB_OFFLINE``, ``HF_ENDPOINT``, tokens) at
the registry's pinned commit. The file is read once, its full sha256 compared with the registry's, and those same
bytes are what gets deserialized (hashing the file and opening it again would let a swap in between through). Only
safetensors are ever loaded.

A mirror is a folder in the Hub's layout (``MIRROR/ORG/NAME/model.safetensors``, ``config.json``, ``README.md``)
that the user names: ``mirror=`` / ``--mirror``, or ``FIXNORM_ZOO_HUB``. Air-gapped clusters use one; so does this
repository's release folder ``zoo_mirror/``, which :func:`push_release` uploads to the Hub and pins.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

from fixnorm_zoo.errors import IntegrityError, PublishRefused, UsageError, WeightsUnavailable
from fixnorm_zoo.utils.resources import PACKAGE_DIR
from fixnorm_zoo.zoo.registry import ModelInfo

if TYPE_CHECKING:
    from fixnorm_zoo.zoo.registry import Registry

MIRROR_ENV = "FIXNORM_ZOO_HUB"
WEIGHTS_FILE = "model.safetensors"
BUNDLED_DIR = PACKAGE_DIR / "bundled"
"""Weights shipped inside the package, in the Hub's layout (``ORG/NAME/model.safetensors``), for entries whose
registry record says ``hub.bundled``: read-only package data, sha256-checked like a download."""


def bundled_weights(info: ModelInfo) -> Path | None:
    """The package's own copy of ``info``'s weights, if the registry marks them bundled and the file is there."""
    if not info.hub.bundled or not info.hub.repo_id:
        return None
    path = mirror_repo_dir(BUNDLED_DIR, info.hub.repo_id) / info.hub.filename
    return path if path.is_file() else None


def sha256_file(path: str | Path, *, chunk: int = 1 << 20) -> str:
    """Full sha256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def check_repo_id(repo_id: str) -> str:
    """``repo_id`` if it is a valid Hub ``ORG/NAME`` (huggingface_hub's own rule), else a :class:`FixNormZooError`:
    a valid id has no ``..``, no leading ``/`` and exactly one ``/``, so it cannot leave a mirror folder."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as e:
        raise UsageError(f"repo id {repo_id!r} is not a Hub ORG/NAME: {e}") from e
    if repo_id.count("/") != 1:
        raise UsageError(f"repo id {repo_id!r}: give it as ORG/NAME (e.g. fixnorm-zoo/fmnist_resnet9s)")
    return repo_id


def mirror_repo_dir(mirror: str | Path, repo_id: str) -> Path:
    """``MIRROR/ORG/NAME`` for a valid repo id, checked to resolve inside the mirror."""
    try:
        root = Path(mirror).resolve()
        path = (root / check_repo_id(repo_id)).resolve()
    except (
        RuntimeError,
        OSError,
    ) as e:  # a symlink loop: RuntimeError before Python 3.13, OSError (ELOOP) after
        raise UsageError(
            f"the mirror {mirror} cannot be resolved ({e}): a symlink loop? name a real folder with --mirror or "
            f"{MIRROR_ENV}"
        ) from None
    if not path.is_relative_to(root):
        raise UsageError(f"repo id {repo_id!r} resolves outside the mirror {root}: refused")
    return path


def mirror_dir(mirror: str | Path | None = None) -> Path | None:
    """The mirror to use: the argument, else ``$FIXNORM_ZOO_HUB``, else None (the Hub)."""
    if mirror is not None and not str(mirror).strip():
        raise UsageError(
            "the mirror named is an empty string (an unset shell variable?): name a folder with --mirror / mirror=, "
            "or leave it out to use the Hub"
        )
    value = mirror if mirror is not None else os.environ.get(MIRROR_ENV)
    return Path(value) if value else None


def fetch_weights(
    info: ModelInfo,
    *,
    revision: str | None = None,
    cache_dir: str | Path | None = None,
    local_files_only: bool | None = None,
    mirror: str | Path | None = None,
) -> Path:
    """The local path of ``info``'s weights file: in the mirror the caller names, else the package's bundled copy
    (``hub.bundled`` entries, no revision asked), else downloaded from the Hub at the pinned commit. Not verified:
    :func:`read_verified_weights` reads and checks it.

    Raises:
        WeightsUnavailable: the entry has no published weights, or the file cannot be had (offline and not cached,
            missing from the mirror, unknown repo or revision).
        UsageError: a revision asked of a mirror, or an empty mirror path.
    """
    hub = info.hub
    if info.status == "retired":
        raise WeightsUnavailable(
            f"{info.name} is retired (an older model, superseded by {info.superseded_by}): load "
            f"{info.superseded_by!r} instead; the retired entry's numbers and sha256 stay on record in the registry"
        )
    if info.status != "published" or not hub.sha256 or not hub.repo_id:
        raise WeightsUnavailable(
            f"{info.name}: this zoo entry is a recipe, its weights are not published yet. Train them with: "
            f"{info.train_command} ; or build the architecture alone with pretrained=False"
        )
    root = mirror_dir(mirror)
    if root is not None:
        if revision is not None:
            raise UsageError(
                f"{info.name}: revision={revision!r} cannot be honoured by the mirror {root} (a mirror holds one "
                f"version per repo); drop the revision, or unset {MIRROR_ENV} / mirror= / --mirror to download from the Hub"
            )
        path = mirror_repo_dir(root, hub.repo_id) / hub.filename
        if not path.is_file():
            raise WeightsUnavailable(
                f"{info.name}: {path} does not exist in the mirror {root}; copy the repo {hub.repo_id} there or "
                f"name a mirror that has it (mirror= in Python, --mirror on the command line, or {MIRROR_ENV})"
            )
        return path
    if revision is None and (bundled := bundled_weights(info)) is not None:
        return bundled
    if (revision or hub.revision) is None:
        raise WeightsUnavailable(
            f"{info.name}: its weights are in a release folder, not yet pushed to the Hub (the registry pins no Hub "
            f"revision). Name a folder holding {hub.repo_id}/: mirror=DIR in Python, --mirror DIR on the command line, or {MIRROR_ENV}=DIR (a checkout of "
            "fixnorm_zoo has them in zoo_mirror/)"
        )
    return _download(
        info, revision=revision or hub.revision, cache_dir=cache_dir, local_files_only=local_files_only
    )


def read_verified_weights(info: ModelInfo, **fetch_kwargs) -> bytes:
    """The weights file's bytes, read once and checked against the registry's sha256 (pass them to
    ``safetensors.torch.load``). Arguments as :func:`fetch_weights`.

    Raises:
        IntegrityError: the bytes' sha256 is not the registry's (both hashes and the file are named).
    """
    path = fetch_weights(info, **fetch_kwargs)
    size = path.stat().st_size
    if info.hub.size is not None and size != info.hub.size:  # before reading: a 12 GB file is not read whole
        raise IntegrityError(
            f"{info.name}: refusing to load {path}: it is {size:,} bytes but the registry pins {info.hub.size:,}. The "
            "file was corrupted or replaced; delete it from the cache (or mirror) and download again"
        )
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != info.hub.sha256:
        revision = fetch_kwargs.get("revision") or info.hub.revision
        at = f" (revision {revision})" if revision else ""  # a mirror or the bundled copy has no revision
        raise IntegrityError(
            f"{info.name}: refusing to load {path}: its sha256 is {digest} but the registry pins {info.hub.sha256}"
            f"{at}. The file was corrupted or replaced; "
            "delete it from the cache (or mirror) and download again, and report it if it persists."
        )
    return data


def _download(info: ModelInfo, *, revision: str, cache_dir, local_files_only) -> Path:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    hub = info.hub
    try:
        return Path(
            hf_hub_download(
                hub.repo_id,
                hub.filename,
                revision=revision,
                cache_dir=cache_dir,
                local_files_only=bool(local_files_only),
            )
        )
    except LocalEntryNotFoundError as e:
        raise WeightsUnavailable(
            f"{info.name}: {hub.repo_id}@{revision[:12]}/{hub.filename} is not in the local cache and the Hub cannot "
            "be reached or may not be used (HF_HUB_OFFLINE=1 or local_files_only=True). Download it once online, "
            f"or name a mirror folder (mirror= in Python, --mirror on the command line, or {MIRROR_ENV})."
        ) from e
    except RepositoryNotFoundError as e:
        raise WeightsUnavailable(
            f"{info.name}: Hub repo {hub.repo_id} not found (private without a token?)"
        ) from e
    except RevisionNotFoundError as e:
        raise WeightsUnavailable(f"{info.name}: revision {revision} not found in {hub.repo_id}") from e
    except EntryNotFoundError as e:
        raise WeightsUnavailable(f"{info.name}: {hub.filename} not found in {hub.repo_id}@{revision}") from e


RELEASE_FILES = (
    "README.md",
    "config.json",
    WEIGHTS_FILE,
    "*.png",
    "train_hparams.yaml",
    "log.jsonl",
    "results.csv",
    "provenance.json",
)
"""What ``fixnorm-zoo publish`` writes into a repo folder: the only files ``push`` uploads (a stray ``.env`` or a
pickle beside them stays local)."""
PICKLE_SUFFIXES = (".bin", ".pkl", ".pickle", ".pt", ".pth", ".ckpt")


def check_hub_reachable() -> None:
    """Refuse an upload that cannot happen, before any work: offline mode, or an endpoint that does not answer.

    Raises:
        WeightsUnavailable: ``HF_HUB_OFFLINE`` is set, or ``HF_ENDPOINT`` cannot be reached.
    """
    from huggingface_hub import constants, get_session

    if constants.HF_HUB_OFFLINE:
        raise WeightsUnavailable(
            "HF_HUB_OFFLINE is set, so nothing can be uploaded: unset it, or publish to a folder with --mirror DIR"
        )
    try:
        get_session().get(constants.ENDPOINT, timeout=10)  # any answer will do: the endpoint is there
    except Exception as e:  # noqa: BLE001 - httpx/requests connection errors alike
        raise WeightsUnavailable(
            f"the Hub endpoint {constants.ENDPOINT} cannot be reached ({type(e).__name__}): check the network or "
            "HF_ENDPOINT, or publish to a folder with --mirror DIR and push it later"
        ) from None


def release_digest(contents: dict[str, bytes]) -> str:
    """sha256 over a release folder's files (sorted names, each name and its content's sha256): what a push sent."""
    h = hashlib.sha256()
    for name in sorted(contents):
        h.update(f"{name}\0{hashlib.sha256(contents[name]).hexdigest()}\n".encode())
    return h.hexdigest()


def read_release_folder(folder: Path, *, name: str) -> dict[str, bytes]:
    """The :data:`RELEASE_FILES` of one repo folder, each read once as a regular file (never through a symlink,
    never blocking on a FIFO): the bytes push hashes are the bytes it uploads.

    Raises:
        PublishRefused: one of them is a symlink or not a regular file (nothing is pushed).
    """
    import fnmatch

    from fixnorm_zoo.utils.files import read_regular_file

    contents = {}
    for p in sorted(folder.iterdir()):
        if any(fnmatch.fnmatch(p.name, pat) for pat in RELEASE_FILES):
            try:
                contents[p.name] = read_regular_file(p)
            except FileExistsError as e:
                raise PublishRefused(f"{name}: {e}; nothing pushed") from None
    return contents


def push_release(
    release: str | Path, *, registry: Registry, names: list[str] | None = None, force: bool = False
) -> list[dict]:
    """Upload the published entries kept in a release folder (``RELEASE/ORG/NAME/``) to the Hub and pin each one's
    commit in the registry. Every selected folder is checked first (present, weights matching the registry's
    sha256, no pickle), then uploaded, so one bad folder pushes nothing; only :data:`RELEASE_FILES` go up.

    Args:
        release: a folder in the Hub's layout (this repository's ``zoo_mirror/``).
        registry: the registry whose entries are pushed and pinned.
        names: only these zoo names (default: every published entry found in the folder).
        force: upload even a folder identical to what the pinned commit received (default: skip it).

    Returns: one ``{"name", "repo_id", "revision", "unchanged"}`` per selected repo (``unchanged``: skipped, the
    pinned commit already holds these files).

    Raises:
        WeightsUnavailable: a repo folder is missing, or a name has no published weights.
        PublishRefused: a repo folder holds a pickle.
        IntegrityError: a folder's weights are not the registry's.
        UnknownModelError: an unknown name.
    """
    from huggingface_hub import CommitOperationAdd, HfApi

    if names is not None:
        wanted = {registry.get(n).name for n in names}  # an unknown name is an error, not a silent no-op
        unpublished = sorted(n for n in wanted if registry.get(n).status != "published")
        if unpublished:
            raise WeightsUnavailable(f"{unpublished}: no published weights to push (publish them first)")
    selected = []
    for info in registry.models():
        if info.status != "published" or (names is not None and info.name not in wanted):
            continue
        folder = mirror_repo_dir(release, info.hub.repo_id)
        if not folder.is_dir():
            if names is not None:
                raise WeightsUnavailable(
                    f"{info.name}: {folder} does not exist in the release folder {release}"
                )
            continue
        pickles = sorted(p.name for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES)
        if pickles:
            raise PublishRefused(
                f"{info.name}: {folder} holds pickle files {pickles}: nothing pushed; the zoo ships safetensors only, "
                "remove them"
            )
        contents = read_release_folder(folder, name=info.name)
        digest = hashlib.sha256(contents.get(info.hub.filename, b"")).hexdigest()
        if digest != info.hub.sha256:
            raise IntegrityError(
                f"{info.name}: {folder / info.hub.filename} has sha256 {digest}, the registry pins "
                f"{info.hub.sha256}: nothing pushed"
            )
        selected.append((info, contents))

    if selected:
        check_hub_reachable()
    api = HfApi()
    pushed = []
    for info, contents in selected:
        digest = release_digest(contents)
        if not force and info.hub.revision and info.hub.release_sha256 == digest:
            pushed.append(
                {
                    "name": info.name,
                    "repo_id": info.hub.repo_id,
                    "revision": info.hub.revision,
                    "unchanged": True,
                }
            )
            continue
        api.create_repo(info.hub.repo_id, exist_ok=True)
        commit = api.create_commit(  # the bytes checked above, not the folder read again
            repo_id=info.hub.repo_id,
            operations=[CommitOperationAdd(path_in_repo=n, path_or_fileobj=b) for n, b in contents.items()],
            commit_message=f"fixnorm_zoo: {info.name} (top-1 {info.top1}%)",
        )
        hub = dataclasses.replace(info.hub, revision=commit.oid, release_sha256=digest)
        registry.upsert(dataclasses.replace(info, hub=hub))
        pushed.append(
            {"name": info.name, "repo_id": info.hub.repo_id, "revision": commit.oid, "unchanged": False}
        )
    return pushed
