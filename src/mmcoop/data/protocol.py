"""What a data source is: modality specs, the :class:`Source` protocol, train/eval transforms.

A *source* stores the ``N`` samples of one split and fetches any rows of it as a
batch. Everything above it (views with re-sampling units, subsets, loaders,
valuation) only ever calls :meth:`Source.fetch`, so in-memory tensors
(:class:`~mmcoop.data.tensor_source.TensorSource`), memory-mapped arrays
(:class:`~mmcoop.data.array_source.ArraySource`), any ``torch`` dataset of dict
items (:class:`~mmcoop.data.dict_source.DictDatasetSource`) and lazily decoded files
(:class:`~mmcoop.data.file_source.FileSource`) all work the same way.

Modality kinds and per-sample shapes (the batch adds a leading ``B``):

============== ================== ==============================================
kind           shape              e.g.
============== ================== ==============================================
``vector``     ``[D]``            tabular features (mfeat)
``sequence``   ``[T, D]``         text/audio features per time step
``image``      ``[C, H, W]``      a picture (avmnist ``visual``)
``spectrogram`` ``[C, F, T]``     a log spectrogram (channels, frequency, time)
``frames``     ``[T, C, H, W]``   video frames
============== ================== ==============================================
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Literal, Mapping, Protocol, Sequence, runtime_checkable

from torch import Tensor

from mmcoop.errors import ConfigError, DataError

Kind = Literal["image", "vector", "spectrogram", "sequence", "frames"]
#: Number of per-sample dimensions of each modality kind.
KIND_NDIM: dict[str, int] = {"vector": 1, "sequence": 2, "image": 3, "spectrogram": 3, "frames": 4}
#: Kind guessed from the number of per-sample dimensions (3 -> image; say ``"spectrogram"`` explicitly).
NDIM_KIND: dict[int, str] = {1: "vector", 2: "sequence", 3: "image", 4: "frames"}


@dataclass(frozen=True)
class ModalitySpec:
    """What one modality looks like.

    Attributes:
        name: modality name, e.g. ``"audio"``.
        kind: one of :data:`KIND_NDIM` (see the module docstring for the shapes).
        shape: per-sample shape; its length must match the kind.
    """

    name: str
    kind: Kind
    shape: tuple[int, ...]

    def __post_init__(self) -> None:
        if self.kind not in KIND_NDIM:
            raise DataError(
                f"modality {self.name!r} has unknown kind {self.kind!r}; valid kinds: {', '.join(KIND_NDIM)}"
            )
        shape = tuple(int(s) for s in self.shape)
        if len(shape) != KIND_NDIM[self.kind] or min(shape, default=1) < 1:
            raise DataError(
                f"modality {self.name!r} of kind {self.kind!r} needs a shape of "
                f"{KIND_NDIM[self.kind]} positive sizes, got {tuple(self.shape)}"
            )
        object.__setattr__(self, "shape", shape)


def infer_kind(name: str, shape: tuple[int, ...], kinds: Mapping[str, str] | None = None) -> str:
    """The kind of modality ``name`` with per-sample ``shape``: ``kinds[name]`` if given, else by ndim.

    Raises:
        DataError: no kind has ``len(shape)`` dimensions and none was given.
    """
    if kinds and name in kinds:
        return kinds[name]
    if len(shape) not in NDIM_KIND:
        raise DataError(
            f"modality {name!r} has per-sample shape {tuple(shape)}: no modality kind has "
            f"{len(shape)} dimensions (vector [D], sequence [T, D], image/spectrogram [C, H, W], "
            "frames [T, C, H, W]); reshape it"
        )
    return NDIM_KIND[len(shape)]


@runtime_checkable
class Source(Protocol):
    """The ``N`` samples of one split, fetched by row.

    Attributes:
        specs: one :class:`ModalitySpec` per modality, in modality order.
        num_classes: number of classes; labels lie in ``[0, num_classes)``.

    Optionally a source has ``extras: dict[str, Tensor]`` (each ``[N]``, cheap, e.g. the
    debiasing wrapper's ``degraded``); :meth:`fetch` returns them per row too.
    A source that holds its samples in memory has ``to(device) -> Source``.

    Optional, for tracing a number back to its sample (read through :func:`sample_ids`
    and :func:`sample_waveforms`, which give the defaults):

    - ``sample_ids() -> Sequence[str]``: a stable id per sample ``[N]``, unique within
      the split (a clip id, a file path relative to the data root, the user's ``"id"``);
      default: the row index as a string (``"0"``, ``"1"``, ...).
    - ``waveforms(row: int) -> {modality: (wave float [T], sample_rate)}``: the raw
      audio behind a modality of one sample, for a player in the report; default: none.
    """

    specs: list[ModalitySpec]
    num_classes: int

    def __len__(self) -> int:
        """Number of samples ``N``."""
        ...

    def labels(self) -> Tensor:
        """int64 ``[N]`` class of every sample (cheap: nothing is decoded)."""
        ...

    def fetch(self, rows: Tensor, train: bool) -> dict[str, Any]:
        """Samples ``rows`` (int64 ``[B]``) as ``{"inputs": {name: [B, *shape]}, "label": int64 [B], **extras}``.

        ``train=True`` applies the training transforms (augmentation), ``False`` the eval ones.
        """
        ...


def index_ids(n: int) -> list[str]:
    """The default sample ids of ``n`` samples: ``["0", "1", ..., str(n - 1)]``."""
    return [str(i) for i in range(int(n))]


def check_ids(ids: Sequence[Any], n: int, where: str) -> list[str]:
    """``ids`` as ``n`` unique strings.

    Args:
        ids: one id per sample (ints and paths are turned into strings).
        n: number of samples.
        where: how messages name the source.

    Raises:
        DataError: not ``n`` ids, or an id repeated (named, with both rows).

    Example:
        >>> check_ids([3, "a.wav"], 2, "my data")
        ['3', 'a.wav']
    """
    out = [str(x) for x in ids]
    if len(out) != n:
        raise DataError(f"{where}: {len(out)} sample ids for {n} samples; give one id per sample")
    if len(set(out)) != n:
        seen: dict[str, int] = {}
        for i, x in enumerate(out):
            if x in seen:
                raise DataError(
                    f"{where}: sample id {x!r} is used by rows {seen[x]} and {i}; ids must be unique within a split"
                )
            seen[x] = i
    return out


def sample_ids(source: Any) -> list[str]:
    """The stable id of every sample of ``source`` ``[N]`` (see :class:`Source`).

    Args:
        source: a :class:`Source`; its optional ``sample_ids()`` is used (else an ``ids``
            sequence attribute), else the row indices.

    Returns:
        ``N`` unique strings, in row order.

    Raises:
        DataError: the source's ids are not ``N`` unique values.

    Example:
        >>> import torch
        >>> from mmcoop.data import ArraySource
        >>> sample_ids(ArraySource({"a": torch.zeros(3, 2), "b": torch.zeros(3, 4)}, [0, 1, 0]))
        ['0', '1', '2']
    """
    n = len(source)
    fn = getattr(source, "sample_ids", None)
    ids = fn() if callable(fn) else getattr(source, "ids", None)  # ``ids``: an attribute of wrappers
    if ids is None:
        return index_ids(n)
    return check_ids(ids, n, f"{type(source).__name__}.sample_ids()")


def sample_waveforms(source: Any, row: int) -> dict[str, tuple[Any, int]]:
    """The raw audio behind the modalities of sample ``row``: ``{modality: (wave [T], rate)}``; ``{}`` if none."""
    fn = getattr(source, "waveforms", None)
    if not callable(fn):
        return {}
    return dict(fn(int(row)) or {})


BatchTransform = Callable[[dict[str, Tensor]], dict[str, Tensor]]


@dataclass(frozen=True)
class Transforms:
    """Batched input transforms: ``fn(inputs: {name: Tensor[B, *shape]}) -> same``.

    ``train`` is applied when a batch is fetched for training (augmentation), ``eval``
    for evaluation and valuation; ``None`` leaves the inputs as stored. They are
    independent: a normalisation both need goes into both. Random transforms draw
    from torch's RNG of the process that fetches (a DataLoader worker is seeded from
    the loader's ``(seed, epoch)``; see :func:`~mmcoop.data.loader.make_loader`).
    """

    train: BatchTransform | None = None
    eval: BatchTransform | None = None

    def __call__(self, inputs: dict[str, Tensor], train: bool) -> dict[str, Tensor]:
        fn = self.train if train else self.eval
        return inputs if fn is None else fn(inputs)

    @classmethod
    def coerce(cls, value: "Transforms | Mapping[str, BatchTransform | None] | None") -> "Transforms":
        """``None``, a :class:`Transforms` or a dict with keys ``"train"``/``"eval"`` -> :class:`Transforms`."""
        if value is None:
            return cls()
        if isinstance(value, Transforms):
            return value
        if isinstance(value, Mapping):
            bad = sorted(set(value) - {"train", "eval"})
            if bad:
                raise ConfigError(f"unknown transform key(s) {bad}; give transforms as {{'train': fn, 'eval': fn}}")
            return cls(value.get("train"), value.get("eval"))
        raise ConfigError(
            f"transforms must be a dict {{'train': fn, 'eval': fn}} or Transforms, got {type(value).__name__}"
        )
