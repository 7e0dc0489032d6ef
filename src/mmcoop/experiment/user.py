"""User code through config targets: ``data: {target: "pkg.module:callable", options: {...}}`` and
``model: {target: ...}``, and the checks that attribute its errors to it.

Config targets run code by design (like Hydra's ``_target_``): a run folder whose
``config.yaml`` names a target imports and calls it when the run is resumed or valued.

When user code fails, the error is the user's, shown as theirs
(`UserCodeError`): the config key, their exception and its message, and the
frame in their own file that raised it. Before training, a model built from a target
(or trained on data from one) is run once on two training samples
(`probe_model`), so a ``fuse`` returning the wrong shape or an encoder expecting
another input width is named at once, with the expected shape. The parameter memory
of a built-in model is estimated on the ``meta`` device before anything is allocated
(`check_model_size`), so an impossible size is refused up front.
"""

from __future__ import annotations

import contextlib
import os
import traceback
from typing import Any, Callable, Iterator, Mapping

from torch.utils.data import Dataset as TorchDataset

from mmcoop.data import DatasetSplits, DictDatasetSource, MultimodalDataset, Source, check_finite
from mmcoop.errors import ConfigError, DataError, MMCoopError
from mmcoop.utils.targets import call_with_supported, resolve_target

SPLITS = ("train", "val", "test")


class UserCodeError(MMCoopError):
    """User code named by a config target raised, or returned something of the wrong shape."""


def _is_library_file(filename: str) -> bool:
    """Frames of mmcoop, torch, the standard library and installed packages are not the user's."""
    import mmcoop
    import torch

    roots = [os.path.dirname(mmcoop.__file__), os.path.dirname(torch.__file__), os.path.dirname(os.__file__)]
    f = os.path.abspath(filename)
    return (
        f.startswith("<")
        or "site-packages" in f
        or "dist-packages" in f
        or any(f.startswith(r + os.sep) for r in roots)
    )


def user_frame(exc: BaseException) -> str | None:
    """``File "...", line N, in fn: source`` of the innermost traceback frame in the user's own
    files (not mmcoop, torch, the standard library or installed packages), or ``None``."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if not _is_library_file(f.filename)]
    if not frames:
        return None
    f = frames[-1]
    line = f" ({f.line.strip()})" if f.line else ""
    return f'File "{f.filename}", line {f.lineno}, in {f.name}{line}'


@contextlib.contextmanager
def user_code(key: str, doing: str) -> Iterator[None]:
    """Turn an exception raised by user code into a `UserCodeError` naming ``key``.

    mmcoop's own errors (`MMCoopError`) pass unchanged; ``KeyboardInterrupt`` too.

    Args:
        key: the config key of the target, e.g. ``"model.target='mylab.models:build'"``.
        doing: what mmcoop was doing, e.g. ``"building the model"``.

    Example::

        with user_code("data.target='bad:raises'", "loading the data"):
            fn(**options)
    """
    try:
        yield
    except MMCoopError:
        raise
    except MemoryError as e:
        raise UserCodeError(f"{key}: out of memory while {doing} ({e}); make the model or data smaller") from e
    except Exception as e:  # noqa: BLE001 - anything user code raises is reported as the user's
        where = user_frame(e)
        msg = f"{key} raised {type(e).__name__} while {doing}: {e}"
        if where:
            msg += f"\n  at {where}"
        msg += (
            "\nThis error comes from the code that the config names, not from mmcoop; fix it there "
            "(rerun with `mmcoop --debug ...` for the full traceback)"
        )
        raise UserCodeError(msg) from e


def _as_view(obj: Any, split: str, key: str, reference: MultimodalDataset | None) -> MultimodalDataset:
    """A split returned by user code as a dataset view: views pass, sources are viewed, plain
    ``Dataset``s of dict items are wrapped (specs and classes from ``reference`` when given)."""
    if isinstance(obj, MultimodalDataset):
        return obj
    try:
        if isinstance(obj, Source):
            return MultimodalDataset.from_source(obj)
        if isinstance(obj, TorchDataset):
            kw: dict[str, Any] = {"name": f"{split} split of {key}"}
            if reference is not None:
                kw.update(num_classes=reference.num_classes, specs=reference.specs)
            return MultimodalDataset.from_source(DictDatasetSource(obj, **kw))
    except MMCoopError as e:
        raise DataError(f"{key}: {split} split: {e}") from None
    raise ConfigError(
        f"{key}: the {split} split is a {type(obj).__name__}; return a torch Dataset of "
        '{"inputs": {name: Tensor}, "label": int} items, an mmcoop source or dataset'
    )


def user_splits(target: str, options: Mapping[str, Any], seed: int, name: str = "custom") -> DatasetSplits:
    """Call the user's data target and check what it returns.

    The callable gets ``**options`` (and ``seed=`` when it accepts it) and returns a
    `DatasetSplits`, a mapping with keys ``train``, ``val``, ``test``, or
    a ``(train, val, test)`` tuple; each split is an mmcoop dataset or source, or a
    ``torch.utils.data.Dataset`` whose items are ``{"inputs": {name: Tensor}, "label": int}``.
    The three splits must have the same modalities (in order) and classes, and finite inputs
    (`check_finite`).
    """
    key = f"data.target={target!r}"
    fn = resolve_target(target, "data.target")
    with user_code(key, "loading the data"):
        out = call_with_supported(fn, (), {"seed": seed}, dict(options), key)
    if isinstance(out, DatasetSplits):
        parts = {s: out.split(s) for s in SPLITS}
        info = dict(out.info)
    elif isinstance(out, Mapping):
        missing = [s for s in SPLITS if s not in out]
        if missing:
            raise ConfigError(f"{key} returned a mapping without {missing}; return keys train, val, test")
        parts, info = {s: out[s] for s in SPLITS}, {}
    elif isinstance(out, (tuple, list)) and len(out) == 3:
        parts, info = dict(zip(SPLITS, out)), {}
    else:
        raise ConfigError(
            f"{key} returned {type(out).__name__}; return (train, val, test) datasets, a dict with those keys, "
            "or mmcoop.data.DatasetSplits"
        )
    ref = _as_view(parts["train"], "train", key, None)
    views = {"train": ref}
    views.update({s: _as_view(parts[s], s, key, ref) for s in SPLITS[1:]})
    for s in SPLITS[1:]:
        v = views[s]
        if v.modalities != ref.modalities:
            raise DataError(f"{key}: the {s} split has modalities {v.modalities} but train has {ref.modalities}")
        if v.num_classes != ref.num_classes:
            raise DataError(f"{key}: the {s} split has {v.num_classes} classes but train has {ref.num_classes}")
    info.setdefault("source", target)
    splits = DatasetSplits(name, views["train"], views["val"], views["test"], info)
    check_finite(splits)  # NaN/inf inputs in any split, as for a registered dataset
    return splits


def _human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if n < 1000 or unit == "PB":
            return f"{n:.3g} {unit}"
        n /= 1000
    return f"{n:.3g} PB"  # pragma: no cover


def available_memory(device: str = "cpu") -> int | None:
    """Bytes of memory the model may use: the GPU's total for a CUDA device, else the machine's RAM."""
    import torch

    try:
        if device.startswith("cuda") or (device == "auto" and torch.cuda.is_available()):
            idx = torch.device(device).index if device.startswith("cuda") else None
            return int(torch.cuda.get_device_properties(idx or 0).total_memory)
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, RuntimeError, AttributeError):
        return None


#: Training memory per parameter byte: weights, gradients and two Adam moments.
TRAINING_COPIES = 4


def check_model_size(
    build: Callable[[], Any], what: str, options: Mapping[str, Any], device: str = "cpu"
) -> int | None:
    """Refuse a model whose parameters cannot fit in memory, before allocating any of it.

    ``build`` is called under ``torch.device("meta")`` (shapes only, no memory, no random
    draws); a builder that cannot run there is not estimated.

    Args:
        build: builds the model.
        what: how the model is named in the message (e.g. ``model 'late-fusion'``).
        options: its size options, named in the message.
        device: the training device (``train.device``).

    Returns:
        The parameter bytes, or ``None`` when not estimated.

    Raises:
        ConfigError: weights, gradients and optimizer state (``4x`` the weights) exceed
            the memory of the machine (or GPU).
    """
    import torch

    try:
        with torch.device("meta"):
            model = build()
        nbytes = sum(p.numel() * p.element_size() for p in model.parameters())
    except Exception:  # noqa: BLE001 - not every builder runs on the meta device; then not estimated
        return None
    avail = available_memory(device)
    if avail is not None and nbytes * TRAINING_COPIES > avail:
        shown = (
            ", ".join(
                f"model.{k}={v!r}"
                for k, v in options.items()
                if isinstance(v, (int, float)) and not isinstance(v, bool)
            )
            or "its options"
        )
        nparams = sum(p.numel() for p in model.parameters())
        raise ConfigError(
            f"{what} with {shown} has {nparams:.3g} parameters: {_human_bytes(nbytes)} of weights, about "
            f"{_human_bytes(nbytes * TRAINING_COPIES)} with gradients and optimizer state, but this machine has "
            f"{_human_bytes(avail)} of memory; make the model smaller (e.g. a lower model.dim)"
        )
    return nbytes


def probe_model(model: Any, splits: DatasetSplits, key: str, samples: int = 2) -> None:
    """Run ``model`` once on ``samples`` training samples (eval mode, no gradients, RNG untouched)
    and check the shapes of the model contract.

    ``encode`` must return ``[B, M, D]`` and ``fuse`` ``[B, C]``. An exception raised in
    user code is shown as the user's (`user_code`).

    Raises:
        UserCodeError: the model raised, or returned a wrong shape (expected shape named).
    """
    import torch

    from mmcoop.data.base import make_loader
    from mmcoop.utils.seeding import rng_state, set_rng_state

    data = splits.train.train_mode(False)
    n = min(samples, len(data))
    if n == 0:
        return
    batch = next(iter(make_loader(data, n, shuffle=False)))
    inputs = batch["inputs"]
    shown = ", ".join(f"{k} {list(v.shape)}" for k, v in inputs.items() if hasattr(v, "shape"))
    doing = f"running the model on {n} training samples (inputs {shown})"
    m, c = len(splits.train.modalities), splits.num_classes
    state, modes = rng_state(), [(mod, mod.training) for mod in model.modules()]
    model.eval()
    try:
        with torch.no_grad(), user_code(key, doing):
            feats = model.encode(inputs)
            if not isinstance(feats, torch.Tensor) or feats.dim() != 3 or tuple(feats.shape[:2]) != (n, m):
                got = list(feats.shape) if isinstance(feats, torch.Tensor) else type(feats).__name__
                raise UserCodeError(
                    f"{key}: encode(inputs) returned {got}; expected [B, M, D] = [{n}, {m}, D] "
                    f"(one feature row per modality: {', '.join(splits.train.modalities)})"
                )
            logits = model.fuse(feats)
            if not isinstance(logits, torch.Tensor) or tuple(logits.shape) != (n, c):
                got = list(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
                raise UserCodeError(
                    f"{key}: fuse(features) returned {got}; expected logits [B, C] = [{n}, {c}] "
                    f"(B samples, C = {c} classes of the data)"
                )
    finally:
        for mod, flag in modes:
            mod.training = flag
        set_rng_state(state)
