"""Weights in and out of the Hugging Face Hub (or a local mirror of it), checked by sha256.

Downloads go through huggingface_hub (its cache, progress bars, ``HF_HUB_OFFLINE``, ``HF_ENDPOINT``, tokens) at
the registry's pinned commit; the file's full sha256 is compared with the registry's before anything reads it, and
only safetensors are ever loaded. ``FIXNORM_ZOO_HUB=/dir`` serves the same repos from a folder
(``/dir/ORG/NAME/model.safetensors``, ``config.json``, ``README.md``) for air-gapped clusters and for ``make demo``.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from fixnorm_zoo.errors import FixNormZooError
from fixnorm_zoo.registry import ModelInfo

MIRROR_ENV = "FIXNORM_ZOO_HUB"
BUNDLED_MIRROR = Path(__file__).resolve().parent.parent / "zoo_mirror"
"""The Fashion-MNIST zoo's weights, committed with the repository (a mirror in the Hub's layout); used for entries
published to a local mirror only (no pinned Hub revision) when ``FIXNORM_ZOO_HUB`` is not set."""


class IntegrityError(FixNormZooError):
    """A downloaded file's sha256 differs from the registry's: the file is refused, never loaded."""


def sha256_file(path: str | Path, *, chunk: int = 1 << 20) -> str:
    """Full sha256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def mirror_dir() -> Path | None:
    value = os.environ.get(MIRROR_ENV)
    return Path(value) if value else None


def fetch_weights(
    info: ModelInfo,
    *,
    revision: str | None = None,
    cache_dir: str | Path | None = None,
    local_files_only: bool | None = None,
) -> Path:
    """The local path of ``info``'s weights file, downloaded if needed and verified against the registry's sha256.

    Raises:
        FixNormZooError: the entry has no published weights, or the file cannot be had (offline and not cached,
            missing from the mirror, unknown repo or revision).
        IntegrityError: the file's sha256 is not the registry's.
    """
    hub = info.hub
    if info.status != "published" or not hub.sha256 or not hub.repo_id:
        raise FixNormZooError(
            f"{info.name}: no weights are published yet (status {info.status!r}). Train them with: "
            f"{info.train_command} ; or build the architecture alone with pretrained=False"
        )
    mirror = mirror_dir()
    if (
        mirror is None
        and hub.revision is None
        and revision is None
        and (BUNDLED_MIRROR / hub.repo_id).is_dir()
    ):
        mirror = BUNDLED_MIRROR
    if mirror is not None:
        path = mirror / hub.repo_id / hub.filename
        if not path.is_file():
            raise FixNormZooError(
                f"{info.name}: {path} does not exist (the mirror {mirror} is used instead of the Hub: "
                f"{MIRROR_ENV} is set, or the registry pins no Hub revision); copy the repo {hub.repo_id} there "
                f"or point {MIRROR_ENV} at a mirror that has it"
            )
    else:
        path = _download(info, revision=revision, cache_dir=cache_dir, local_files_only=local_files_only)
    digest = sha256_file(path)
    if digest != hub.sha256:
        raise IntegrityError(
            f"{info.name}: refusing to load {path}: its sha256 is {digest} but the registry pins {hub.sha256} "
            f"(revision {revision or hub.revision}). The file was corrupted or replaced; delete it from the cache "
            "and download again, and report it if it persists."
        )
    return Path(path)


def _download(info: ModelInfo, *, revision, cache_dir, local_files_only) -> Path:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    hub = info.hub
    rev = revision or hub.revision
    if rev is None:
        raise FixNormZooError(
            f"{info.name}: the registry pins no Hub revision (published to a local mirror only): "
            f"set {MIRROR_ENV} to the mirror directory"
        )
    try:
        return Path(
            hf_hub_download(
                hub.repo_id,
                hub.filename,
                revision=rev,
                cache_dir=cache_dir,
                local_files_only=bool(local_files_only),
            )  # fmt: skip
        )
    except LocalEntryNotFoundError as e:
        raise FixNormZooError(
            f"{info.name}: {hub.repo_id}@{rev[:12]}/{hub.filename} is not in the local cache and the Hub cannot be "
            "reached or may not be used (HF_HUB_OFFLINE=1 or local_files_only=True). Download it once online, or "
            f"set {MIRROR_ENV} to a mirror directory."
        ) from e
    except RepositoryNotFoundError as e:
        raise FixNormZooError(
            f"{info.name}: Hub repo {hub.repo_id} not found (private without a token?)"
        ) from e
    except RevisionNotFoundError as e:
        raise FixNormZooError(f"{info.name}: revision {rev} not found in {hub.repo_id}") from e
    except EntryNotFoundError as e:
        raise FixNormZooError(f"{info.name}: {hub.filename} not found in {hub.repo_id}@{rev}") from e
