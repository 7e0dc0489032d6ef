"""What a data source is: modality specs, the `Source` protocol, train/eval transforms.

A *source* stores the ``N`` samples of one split and fetches any rows of it as a
batch. Everything above it (views with re-sampling units, subsets, loaders,
valuation) only ever calls `Source.fetch`, so in-memory tensors
(`TensorSource`), memory-mapped arrays
(`ArraySource`), any ``torch`` dataset of dict
items (`DictDatasetSource`) and lazily decoded files
(`FileSource`) all work the same way.

Modality kinds and per-sample shapes (the batch adds a leading ``B``):

============== ================== ==============================================
kind           shape              e.g.
============== ================== ==============================================
``vector``     ``[D]``            tabular features (mfeat)
``sequence``   ``[T, D]``         text/audio features per time step
``image``      ``[C, H, W]``      a picture (avmnist ``visual``)
``spectrogram`` ``[C, F, T]``     a log spectrogram (channels, frequency, time)
``frames``     ``[T, C, H, W]``   video frames
``tokens``     ``[L]`` (int64)    token ids of a text, padded to ``L``
============== ================== ==============================================

Every kind but ``tokens`` holds floating-point values. A ``tokens`` modality holds int64
token ids (a padded batch is ``[B, L]``); its **attention mask is not a second tensor**:
it is ``ids != spec.pad_id``, computed by the encoder from the spec's ``pad_id`` (default
0, the BERT convention; `mmcoop.data.text.tokenize` returns the tokenizer's). So a
tokens batch is one tensor like every other kind's: collated, indexed, moved to the device
and re-sampled by the same code (a real token must therefore never have the padding id). ``vocab_size`` (optional) sizes the
embedding of an encoder trained from scratch (default: the encoder's ``vocab_size`` option).

A ``tokens`` modality is never guessed: its per-sample shape ``[L]`` is that of a
``vector``, so it must be declared (``ModalitySpec(name, "tokens", (L,))`` or
``kinds={"text": "tokens"}``). Valuation is unchanged (a removed modality is a zeroed
feature at the fusion head); the input-level (black-box) baseline of a tokens modality
is its padding id (`input_baselines`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Literal, Mapping, Protocol, Sequence, runtime_checkable

from torch import Tensor

from mmcoop.errors import ConfigError, DataError

Kind = Literal["image", "vector", "spectrogram", "sequence", "frames", "tokens"]
#: Number of per-sample dimensions of each modality kind.
KIND_NDIM: dict[str, int] = {"vector": 1, "sequence": 2, "image": 3, "spectrogram": 3, "frames": 4, "tokens": 1}
#: Kinds whose values are integer ids (int64), not floats: never converted to a float dtype.
INTEGER_KINDS: frozenset[str] = frozenset({"tokens"})
#: Kind guessed from the number of per-sample dimensions (3 -> image; say ``"spectrogram"`` explicitly).
NDIM_KIND: dict[int, str] = {1: "vector", 2: "sequence", 3: "image", 4: "frames"}


@dataclass(frozen=True)
class ModalitySpec:
    """What one modality looks like.

    Attributes:
        name: modality name, e.g. ``"audio"``.
        kind: one of `KIND_NDIM` (see the module docstring for the shapes).
        shape: per-sample shape; its length must match the kind.
        pad_id: ``tokens`` only: the padding id (attention mask = ``ids != pad_id``; the
            input-level valuation baseline). Default 0.
        vocab_size: ``tokens`` only, optional: number of token ids (every id lies in
            ``[0, vocab_size)``), read by encoders trained from scratch.

    Example:
        >>> ModalitySpec("text", "tokens", (32,), pad_id=0, vocab_size=30522).shape
        (32,)
    """

    name: str
    kind: Kind
    shape: tuple[int, ...]
    pad_id: int = 0
    vocab_size: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in KIND_NDIM:
            raise DataError(
                f"modality {self.name!r} has unknown kind {self.kind!r}; valid kinds: {', '.join(KIND_NDIM)}"
            )
        if self.kind != "tokens" and (self.pad_id != 0 or self.vocab_size is not None):
            raise DataError(
                f"modality {self.name!r} of kind {self.kind!r}: pad_id and vocab_size apply to kind 'tokens' only"
            )
        pad, vocab = int(self.pad_id), None if self.vocab_size is None else int(self.vocab_size)
        if pad < 0 or (vocab is not None and not vocab > pad):
            raise DataError(
                f"modality {self.name!r}: pad_id must be >= 0 and below vocab_size, got pad_id={self.pad_id}, "
                f"vocab_size={self.vocab_size}"
            )
        object.__setattr__(self, "pad_id", pad)
        object.__setattr__(self, "vocab_size", vocab)
        shape = tuple(int(s) for s in self.shape)
        if len(shape) != KIND_NDIM[self.kind] or min(shape, default=1) < 1:
            raise DataError(
                f"modality {self.name!r} of kind {self.kind!r} needs a shape of "
                f"{KIND_NDIM[self.kind]} positive sizes, got {tuple(self.shape)}"
            )
        object.__setattr__(self, "shape", shape)


def input_baselines(specs: Sequence[ModalitySpec]) -> dict[str, float | int]:
    """What replaces each modality when it is removed at the input (black-box valuation).

    Args:
        specs: the modalities.

    Returns:
        ``{name: baseline}``: the padding id for ``tokens`` (an all-padding text), ``0.0``
            for every other kind (zeros). Pass it as ``baselines=`` to
            `mmcoop.valuation.valuate_inputs`.

    Example:
        >>> input_baselines([ModalitySpec("a", "vector", (3,)), ModalitySpec("t", "tokens", (4,), pad_id=1)])
        {'a': 0.0, 't': 1}
    """
    return {s.name: (s.pad_id if s.kind == "tokens" else 0.0) for s in specs}


def infer_kind(name: str, shape: tuple[int, ...], kinds: Mapping[str, str] | None = None) -> str:
    """The kind of modality ``name`` with per-sample ``shape``: ``kinds[name]`` if given, else by ndim.

    A 1-D shape is a ``vector``: ``tokens`` must be given in ``kinds``.

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
        specs: one `ModalitySpec` per modality, in modality order.
        num_classes: number of classes; labels lie in ``[0, num_classes)``.

    Optionally a source has ``extras: dict[str, Tensor]`` (each ``[N]``, cheap, e.g. the
    debiasing wrapper's ``degraded``); `fetch` returns them per row too.
    A source that holds its samples in memory has ``to(device) -> Source``.

    Optional, for tracing a number back to its sample (read through `sample_ids`
    and `sample_waveforms`, which give the defaults):

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
    """The stable id of every sample of ``source`` ``[N]`` (see `Source`).

    Args:
        source: a `Source`; its optional ``sample_ids()`` is used (else an ``ids``
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
    the loader's ``(seed, epoch)``; see `make_loader`).
    """

    train: BatchTransform | None = None
    eval: BatchTransform | None = None

    def __call__(self, inputs: dict[str, Tensor], train: bool) -> dict[str, Tensor]:
        fn = self.train if train else self.eval
        return inputs if fn is None else fn(inputs)

    @classmethod
    def coerce(cls, value: "Transforms | Mapping[str, BatchTransform | None] | None") -> "Transforms":
        """``None``, a `Transforms` or a dict with keys ``"train"``/``"eval"`` -> `Transforms`."""
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
