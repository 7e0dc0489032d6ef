"""Arrays per modality (``.npy`` / ``.npz`` files memory-mapped, or arrays in memory) as a source.

Each modality is an array ``[N, *shape]``: a NumPy array or tensor, a ``.npy`` path,
or an ``.npz`` path with the key (``(path, key)``; a bare ``.npz`` path uses the
modality's name as key). Files are opened with ``numpy.load(mmap_mode="r")``: the OS
pages in only the rows a batch reads, so data larger than memory works. Members of
an *uncompressed* ``.npz`` (``numpy.savez``) are mapped in place too; a compressed
one (``savez_compressed``) cannot be mapped and is read into memory with a warning.
Labels (and optional per-sample extras) are read whole (``[N]``, small).

Workers: the source pickles the file paths, not the arrays, so each ``DataLoader``
worker maps the files itself.
"""

from __future__ import annotations

import os
import struct
import warnings
import zipfile
from pathlib import Path
from typing import Any, Mapping, Sequence, Union

import numpy as np
import torch
from torch import Tensor

from mmcoop.data.items import as_kind_dtype, as_labels, resolve_specs
from mmcoop.data.protocol import ModalitySpec, Transforms, check_ids
from mmcoop.errors import DataError

PathLike = Union[str, "os.PathLike[str]"]
ArrayRef = Union[np.ndarray, Tensor, PathLike, tuple[PathLike, str]]


def _ref(value: ArrayRef, default_key: str) -> tuple[Any, ...]:
    """How to (re)open an array: ``("mem", array)``, ``("npy", path)`` or ``("npz", path, key)``."""
    if isinstance(value, Tensor):
        return ("mem", value.detach().cpu().numpy())
    if isinstance(value, np.ndarray):
        return ("mem", value)
    if isinstance(value, tuple):
        path, key = value
        return ("npz", Path(path), str(key))
    if isinstance(value, (str, os.PathLike)):
        path = Path(value)
        if path.suffix == ".npz":
            return ("npz", path, default_key)
        if path.suffix == ".npy":
            return ("npy", path)
        raise DataError(f"{path}: arrays must be .npy or .npz files (numpy.save / numpy.savez)")
    raise DataError(
        f"array for {default_key!r} must be a numpy array, tensor, .npy/.npz path or (path.npz, key), "
        f"got {type(value).__name__}"
    )


def _open(ref: tuple[Any, ...], mmap: bool) -> np.ndarray:
    kind = ref[0]
    if kind == "mem":
        return ref[1]
    path: Path = ref[1]
    if not path.is_file():
        raise DataError(f"array file {path} does not exist; check the path")
    try:
        if kind == "npy":
            return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
        return _open_npz_member(path, ref[2], mmap)
    except DataError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise DataError(f"cannot read array file {path} ({e}); re-save it with numpy.save / numpy.savez") from e


def _open_npz_member(path: Path, key: str, mmap: bool) -> np.ndarray:
    """Member ``key`` of an ``.npz``: memory-mapped in place when stored uncompressed."""
    with zipfile.ZipFile(path) as zf:
        names = [n[:-4] for n in zf.namelist() if n.endswith(".npy")]
        try:
            info = zf.getinfo(f"{key}.npy")
        except KeyError:
            raise DataError(f"{path} has no array {key!r}; it holds {names}; name the key as (path, key)") from None
        if not mmap or info.compress_type != zipfile.ZIP_STORED:
            if mmap:
                warnings.warn(
                    f"{path}[{key!r}] is compressed and cannot be memory-mapped: reading it into memory "
                    "(save with numpy.savez or .npy files to map it)",
                    stacklevel=4,
                )
            with zf.open(info) as f:
                return np.lib.format.read_array(f, allow_pickle=False)
    with open(path, "rb") as f:
        f.seek(info.header_offset)
        fields = struct.unpack("<IHHHHHIIIHH", f.read(30))  # zip local file header
        if fields[0] != 0x04034B50:
            raise DataError(f"{path} is not a valid .npz (bad zip header for {key!r}); re-save it with numpy.savez")
        f.seek(info.header_offset + 30 + fields[9] + fields[10])
        version = np.lib.format.read_magic(f)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read_header(f)
        offset = f.tell()
    if dtype.hasobject:
        raise DataError(f"{path}[{key!r}] holds Python objects; store numeric arrays")
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape, order="F" if fortran else "C")


class ArraySource:
    """Arrays per modality ``[N, *shape]`` (memory-mapped files or in memory) plus labels ``[N]``.

    Args:
        arrays: modality name -> array reference (see the module docstring), in modality order.
        labels: class per sample ``[N]``: array, tensor, sequence or file reference (a bare
            ``.npz`` path reads key ``"labels"``).
        num_classes: number of classes (default ``max(labels) + 1``).
        specs: explicit specs (default: inferred from the arrays' shapes, see ``kinds``).
        kinds: modality -> kind overriding the guess by ndim (e.g. ``{"audio": "spectrogram"}``).
        extras: optional name -> per-sample reference ``[N]`` returned with every fetch.
        transforms: train/eval batch transforms (`Transforms`
            or ``{"train": fn, "eval": fn}``), applied after conversion.
        dtype: inputs are converted to this dtype per batch (``None``: keep the array's); a
            ``tokens`` modality (integer ids) is converted to int64 instead.
        mmap: memory-map files (``False``: read them into memory once).
        ids: optional stable id per sample ``[N]`` (default: the row index).

    Raises:
        DataError: missing/unreadable files, keys, sample counts that differ, labels out of range.
    """

    def __init__(
        self,
        arrays: Mapping[str, ArrayRef],
        labels: ArrayRef | Sequence[int],
        num_classes: int | None = None,
        specs: Sequence[ModalitySpec] | None = None,
        kinds: Mapping[str, str] | None = None,
        extras: Mapping[str, ArrayRef] | None = None,
        transforms: Transforms | Mapping[str, Any] | None = None,
        dtype: torch.dtype | None = torch.float32,
        mmap: bool = True,
        ids: Sequence[Any] | None = None,
    ) -> None:
        self._mmap = bool(mmap)
        names = [s.name for s in specs] if specs is not None else list(arrays)
        missing = [m for m in names if m not in arrays]
        if missing:
            raise DataError(f"ArraySource: no array given for modalities {missing}")
        self._refs = {m: _ref(arrays[m], m) for m in names}
        self._arrays: dict[str, np.ndarray] | None = None
        arrs = self._open_all()
        is_ref = isinstance(labels, (np.ndarray, Tensor, str, os.PathLike)) or (
            isinstance(labels, tuple) and len(labels) == 2 and isinstance(labels[1], str)
        )
        label_arr = _open(_ref(labels, "labels"), False) if is_ref else np.asarray(labels)  # type: ignore[arg-type]
        self._labels, self.num_classes = as_labels(np.asarray(label_arr), num_classes, "ArraySource labels")
        n = len(self._labels)
        for m, a in arrs.items():
            if a.ndim < 1 or a.shape[0] != n:
                raise DataError(
                    f"ArraySource: modality {m!r} ({self._where(m)}) has shape {a.shape} but there are "
                    f"{n} labels; every array needs one row per sample"
                )
        self.specs = resolve_specs(
            {m: torch.empty(a.shape[1:]) for m, a in arrs.items()}, specs, names, kinds, "ArraySource"
        )
        for s in self.specs:
            if tuple(arrs[s.name].shape[1:]) != s.shape:
                raise DataError(
                    f"ArraySource: modality {s.name!r} has per-sample shape {arrs[s.name].shape[1:]} "
                    f"but its spec says {s.shape}"
                )
        self.extras: dict[str, Tensor] = {}
        for k, v in (extras or {}).items():
            t = torch.as_tensor(np.array(_open(_ref(v, k), False)))
            if t.shape[:1] != (n,):
                raise DataError(f"ArraySource: extra {k!r} has shape {tuple(t.shape)}; it needs [N] = [{n}]")
            self.extras[k] = t
        self.transforms = Transforms.coerce(transforms)
        self.dtype = dtype
        self.ids = None if ids is None else check_ids(ids, n, "ArraySource ids")

    def sample_ids(self) -> list[str] | None:
        """The ids given (``None``: the row indices are the ids)."""
        return self.ids

    def _where(self, m: str) -> str:
        ref = self._refs[m]
        return "in memory" if ref[0] == "mem" else (str(ref[1]) if ref[0] == "npy" else f"{ref[1]}[{ref[2]!r}]")

    def _open_all(self) -> dict[str, np.ndarray]:
        if self._arrays is None:
            self._arrays = {m: _open(r, self._mmap) for m, r in self._refs.items()}
        return self._arrays

    def array(self, modality: str) -> np.ndarray:
        """The (memory-mapped) array ``[N, *shape]`` of ``modality``."""
        return self._open_all()[modality]

    def __len__(self) -> int:
        return int(self._labels.shape[0])

    def labels(self) -> Tensor:
        return self._labels

    def fetch(self, rows: Tensor, train: bool) -> dict[str, Any]:
        """Read rows ``[B]`` from every array (only those pages), convert, transform; see `Source`."""
        rows = rows.cpu()
        idx = rows.numpy()
        inputs = {}
        arrays = self._open_all()
        for spec in self.specs:
            t = torch.from_numpy(np.ascontiguousarray(arrays[spec.name][idx]))
            inputs[spec.name] = as_kind_dtype(t, spec, self.dtype)
        out: dict[str, Any] = {"inputs": self.transforms(inputs, train), "label": self._labels[rows]}
        for k, v in self.extras.items():
            out[k] = v[rows]
        return out

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_arrays"] = None  # workers re-map the files instead of receiving copies
        return state

    def __repr__(self) -> str:
        return f"ArraySource(N={len(self)}, " + ", ".join(f"{m}: {self._where(m)}" for m in self._refs) + ")"
