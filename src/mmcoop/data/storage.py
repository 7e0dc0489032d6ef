"""Finding data: data root, user cache, downloads, checksums and the preprocessed-tensor cache.

Raw data is organised in *components* (e.g. the FSDD recordings, the MNIST files),
each a set of paths relative to a root. `locate` looks for a component in

1. the data root (``--data-root`` / ``$MMCOOP_DATA``, resolved by the registry),
2. the user cache ``<cache>/data`` where ``<cache>`` is ``$MMCOOP_CACHE``, else
   ``$XDG_CACHE_HOME/mmcoop``, else ``~/.cache/mmcoop``,
3. a download into ``<cache>/data`` (skipped when ``MMCOOP_OFFLINE=1``), which the
   component's download function verifies by checksum before writing atomically,

and otherwise raises one `DataError` saying where it looked
and how to fix it.

Preprocessed tensors are cached in ``<cache>/processed/<dataset>-<key>.pt``; the key
hashes everything the tensors depend on (see `cache_key`). The cache is off
when ``MMCOOP_NO_CACHE=1`` or a loader is called with ``cache=False``; a corrupt,
damaged (tensor shapes or checksums wrong) or unwritable cache (full disk included)
is ignored with a warning and rebuilt.

Also small helpers shared by loaders: seeded generators (`rng`) and
stratified splits (`stratified_split`).
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import torch

from mmcoop.data.base import DatasetSplits, ModalitySpec, MultimodalDataset
from mmcoop.errors import DataError
from mmcoop.utils.io import atomic_torch_save

ENV_CACHE = "MMCOOP_CACHE"
ENV_NO_CACHE = "MMCOOP_NO_CACHE"
ENV_OFFLINE = "MMCOOP_OFFLINE"


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


def cache_dir() -> Path:
    """The user cache folder: ``$MMCOOP_CACHE``, else ``$XDG_CACHE_HOME/mmcoop``, else ``~/.cache/mmcoop``."""
    env = os.environ.get(ENV_CACHE)
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mmcoop"


def downloads_allowed() -> bool:
    """False when ``MMCOOP_OFFLINE`` is set (tests and air-gapped machines)."""
    return not _env_flag(ENV_OFFLINE)


def processed_cache_enabled(option: bool = True) -> bool:
    """Whether to use the preprocessed-tensor cache (loader option and ``MMCOOP_NO_CACHE``)."""
    return bool(option) and not _env_flag(ENV_NO_CACHE)


# -- raw data components ----------------------------------------------------------
@dataclass(frozen=True)
class Component:
    """A piece of raw data found under a root.

    Attributes:
        name: short name used in messages, e.g. ``"fsdd"``.
        required: paths relative to a root that must all exist.
        download: fills a root (the cache data folder) with ``required``, verifying
            checksums; ``None`` if the data cannot be downloaded.
        hint: how the user can provide the data (ends the error message).
    """

    name: str
    required: tuple[str, ...]
    download: Callable[[Path], None] | None = None
    hint: str = ""

    def missing(self, root: Path) -> list[Path]:
        """Required paths absent under ``root``."""
        return [root / r for r in self.required if not (root / r).exists()]


def locate(component: Component, data_root: Path | None) -> tuple[Path, str]:
    """Find ``component`` in the data root, the cache, or by downloading it.

    Args:
        component: what to look for.
        data_root: the resolved data root, or ``None``.

    Returns:
        ``(root, source)`` where ``source`` is ``"data_root"``, ``"cache"`` or ``"download"``.

    Raises:
        DataError: not found anywhere (message lists each place and the missing files).
    """
    cache_root = cache_dir() / "data"
    looked: list[str] = []
    for source, root in (("data_root", data_root), ("cache", cache_root)):
        if root is None:
            looked.append("data root (none given: pass --data-root or set MMCOOP_DATA)")
            continue
        missing = component.missing(Path(root))
        if not missing:
            return Path(root), source
        looked.append(f"{root} (missing: {', '.join(str(m) for m in missing)})")
    if component.download is None:
        why = "it cannot be downloaded automatically"
    elif not downloads_allowed():
        why = f"downloads are disabled ({ENV_OFFLINE} is set)"
    else:
        try:
            component.download(cache_root)
        except DataError:
            raise
        except (OSError, ValueError) as e:  # URLError and timeouts are OSErrors
            why = f"the download into {cache_root} failed ({e})"
        else:
            missing = component.missing(cache_root)
            if not missing:
                return cache_root, "download"
            why = f"the download into {cache_root} did not produce {', '.join(map(str, missing))}"
    raise DataError(
        f"{component.name} data not found. Looked in: {'; '.join(looked)}; {why}. {component.hint}".rstrip()
    )


def fetch(url: str, timeout: float = 60.0) -> bytes:
    """Download ``url`` into memory (raises ``OSError`` on network failure or timeout)."""
    req = urllib.request.Request(url, headers={"User-Agent": "mmcoop"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 (https URLs from constants)
        return resp.read()


def sha256_hex(data: bytes) -> str:
    """SHA-256 of ``data`` as a hex string."""
    return hashlib.sha256(data).hexdigest()


def check_sha256(data: bytes, expected: str, what: str | Path, hint: str = "") -> None:
    """Raise `DataError` naming ``what`` if ``sha256(data) != expected``."""
    got = sha256_hex(data)
    if got != expected:
        raise DataError(f"checksum mismatch for {what}: SHA-256 {got}, expected {expected}. {hint}".rstrip())


# -- preprocessed-tensor cache -------------------------------------------------------
def fingerprint(paths: Iterable[Path]) -> str:
    """Cheap fingerprint of files: hash of sorted (name, size, mtime_ns); changes when any file does."""
    h = hashlib.sha256()
    for p in sorted(Path(p) for p in paths):
        st = p.stat()
        h.update(f"{p.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def cache_key(parts: dict[str, Any]) -> str:
    """A short hash of ``parts`` (dataset, params, seed, source paths and fingerprint, code version)."""
    return sha256_hex(json.dumps(parts, sort_keys=True, default=str).encode())[:24]


def processed_path(dataset: str, key: str) -> Path:
    """Where the preprocessed tensors of ``dataset`` with ``key`` are cached."""
    return cache_dir() / "processed" / f"{dataset}-{key}.pt"


def _split_state(ds: MultimodalDataset) -> dict[str, Any]:
    return {"inputs": ds.inputs, "labels": ds.labels, "extras": ds.extras}


def tensor_digest(t: torch.Tensor) -> str:
    """SHA-256 of a tensor's dtype, shape and bytes (detects truncated, reshaped or zeroed tensors)."""
    t = t.detach().cpu().contiguous()
    h = hashlib.sha256(f"{t.dtype}{tuple(t.shape)}".encode())
    h.update(t.reshape(-1).view(torch.uint8).numpy().data)
    return h.hexdigest()


def _digests(state: dict[str, Any]) -> dict[str, str]:
    """``{"train/inputs/audio": sha, ...}`` over every tensor of the saved splits."""
    out = {}
    for split, part in state["splits"].items():
        for group in ("inputs", "extras"):
            for name, t in part[group].items():
                out[f"{split}/{group}/{name}"] = tensor_digest(t)
        out[f"{split}/labels"] = tensor_digest(part["labels"])
    return out


def _spec_state(spec: ModalitySpec) -> list[Any]:
    """``[name, kind, shape]`` (plus ``{pad_id, vocab_size}`` for a ``tokens`` modality)."""
    out: list[Any] = [spec.name, spec.kind, list(spec.shape)]
    if spec.kind == "tokens":
        out.append({"pad_id": spec.pad_id, "vocab_size": spec.vocab_size})
    return out


def save_processed(splits: DatasetSplits, path: Path) -> bool:
    """Save ``splits`` (storage only, not views) atomically; returns False (with a warning) on failure.

    The file also holds a SHA-256 of every tensor, checked by `load_processed`.
    """
    state = {
        "name": splits.name,
        "num_classes": splits.num_classes,
        "specs": [_spec_state(s) for s in splits.specs],
        "splits": {k: _split_state(splits.split(k)) for k in ("train", "val", "test")},
        "info": json.loads(json.dumps(splits.info, default=str)),
    }
    state["digests"] = _digests(state)
    try:
        atomic_torch_save(state, path)
        return True
    except OSError as e:  # includes mmcoop's StorageError (full disk, read-only cache folder)
        warnings.warn(f"could not write the preprocessed-data cache {path} ({e}); continuing without it", stacklevel=2)
        return False


def _validate_processed(state: dict[str, Any]) -> None:
    """Raise ``ValueError`` unless every tensor has its spec's shape and its recorded digest."""
    specs = {n: tuple(s) for n, _, s, *_ in state["specs"]}
    if set(state["splits"]) != {"train", "val", "test"}:
        raise ValueError(f"splits {sorted(state['splits'])}, expected train, val, test")
    for split, part in state["splits"].items():
        n = int(part["labels"].shape[0])
        if part["labels"].dim() != 1:
            raise ValueError(f"{split} labels have shape {tuple(part['labels'].shape)}, expected [{n}]")
        if set(part["inputs"]) != set(specs):
            raise ValueError(f"{split} holds modalities {sorted(part['inputs'])}, expected {sorted(specs)}")
        for name, t in part["inputs"].items():
            if tuple(t.shape) != (n, *specs[name]):
                raise ValueError(f"{split} {name} has shape {tuple(t.shape)}, expected {(n, *specs[name])}")
        for name, t in part["extras"].items():
            if t.shape[0] != n:
                raise ValueError(f"{split} extra {name} has {t.shape[0]} rows for {n} samples")
    recorded = state.get("digests")
    if recorded is None:
        raise ValueError("no tensor checksums (written by an older mmcoop)")
    actual = _digests(state)
    bad = sorted(k for k, v in actual.items() if recorded.get(k) != v)
    if bad or set(recorded) != set(actual):
        raise ValueError(f"tensor contents differ from their checksums ({', '.join(bad[:4]) or 'tensor set'})")


def load_processed(path: Path) -> DatasetSplits | None:
    """Load splits saved by `save_processed`; ``None`` if absent, unreadable or damaged (warns).

    A file whose tensors do not have their specs' shapes or their recorded SHA-256
    (truncated, edited, zeroed, or written by an older version) is a miss: the caller
    rebuilds the tensors and writes the cache again.
    """
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        _validate_processed(state)
        specs = [ModalitySpec(n, k, tuple(s), **(opt[0] if opt else {})) for n, k, s, *opt in state["specs"]]
        parts = {
            k: MultimodalDataset(v["inputs"], v["labels"], state["num_classes"], specs, v["extras"])
            for k, v in state["splits"].items()
        }
        return DatasetSplits(state["name"], parts["train"], parts["val"], parts["test"], state["info"])
    except Exception as e:  # noqa: BLE001 - any unreadable or damaged cache file is just a miss
        warnings.warn(
            f"ignoring the unreadable or damaged preprocessed-data cache {path} ({e}); it will be rebuilt", stacklevel=2
        )
        return None


# -- dataset pickles ------------------------------------------------------------------------
def load_dataset_pickle(path: Path, what: str) -> Any:
    """``pickle.load`` of a user's own dataset file, refused inside an mmcoop run or comparison folder.

    Unpickling runs whatever code the file names, so mmcoop unpickles only the dataset files
    its readers are pointed at (the formats the official code uses: CMU-MOSEI's pickles,
    AVE/BalancedAV spectrogram ``.pkl``), never a file that lies inside a run folder, which
    may have come from someone else.

    Args:
        path: the pickle.
        what: what the file is, for messages.

    Returns:
        The unpickled object.

    Raises:
        DataError: the file lies inside a run folder (names it), or is missing.
        Exception: whatever unpickling raises for a damaged file (callers word it).
    """
    from mmcoop.utils.rundir import enclosing_run_folder

    run = enclosing_run_folder(path)
    if run is not None:
        raise DataError(
            f"refusing to unpickle {what} {path}: it lies inside the mmcoop run folder {run}. Loading a pickle "
            "runs code it names, so mmcoop loads only your own dataset files; keep the dataset outside run folders"
        )
    if not Path(path).is_file():
        raise DataError(f"missing {what} {path}")
    with open(path, "rb") as fh:
        return pickle.load(fh)  # noqa: S301 - the user's own dataset file (the official format), see above


# -- seeded helpers shared by loaders -----------------------------------------------------
def rng(seed: int, *tags: int) -> np.random.Generator:
    """A NumPy generator for ``(seed, *tags)``: independent streams per purpose, same on every rank."""
    return np.random.default_rng(np.random.SeedSequence([int(seed) % 2**63, *tags]))


def stratified_split(
    labels: np.ndarray, fractions: Sequence[float], gen: np.random.Generator, min_count: int = 0
) -> list[np.ndarray]:
    """Split indices into ``len(fractions) + 1`` groups, per class.

    Args:
        labels: int class per sample ``[N]``.
        fractions: fraction of each class in each leading group (rounded per class);
            the last group gets the rest.
        gen: seeded generator.
        min_count: at least this many of a class in each leading group with a fraction > 0,
            as long as the class keeps one sample in the last group.

    Returns:
        Sorted int64 index arrays, one per group (leading groups, then the rest).
    """
    groups: list[list[np.ndarray]] = [[] for _ in range(len(fractions) + 1)]
    for c in np.unique(labels):
        idx = gen.permutation(np.flatnonzero(labels == c))
        start = 0
        for g, f in enumerate(fractions):
            n = int(round(f * len(idx)))
            if f > 0 and n < min_count and len(idx) - start > min_count:
                n = min_count
            n = min(n, len(idx) - start)
            groups[g].append(idx[start : start + n])
            start += n
        groups[-1].append(idx[start:])
    return [np.sort(np.concatenate(g)).astype(np.int64) if g else np.zeros(0, np.int64) for g in groups]
