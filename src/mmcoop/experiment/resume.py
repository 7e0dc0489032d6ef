"""What a resume may change: the stored config of a run against what the resume asks for.

The config a run was trained with is stored in its commit record (``last.pt``);
``config.yaml`` is a copy for people. When a run is resumed, the requested config
(the stored one, changed by an edited ``config.yaml`` and by options given with
``--resume``) is compared key by key with the stored one:

- keys that define the run (data, seed, model, method, and the optimisation the
  checkpoint's optimizer state embodies) are *refused*, with a diff;
- ``train.epochs`` may *extend* the run (or shorten it, not below the epochs done);
- keys that do not change what is computed (device, progress bars, evaluation batch
  size, data location, ...) are *applied and recorded* in ``config.yaml`` and
  ``resumes.jsonl``.

Nothing requested is dropped without a word.
"""

from __future__ import annotations

from typing import Any

from mmcoop.errors import ConfigError

#: keys a resume may change; their new values are applied and recorded.
APPLIED = frozenset(
    {
        "train.epochs",
        "train.device",
        "train.progress",
        "train.eval_batch_size",
        "train.data_on_device",
        "train.fold_batchnorm",
        "train.divergence_factor",
        "data_root",
        "train.loggers",  # where the epochs are also logged (TensorBoard, W&B, ...); never what is computed
    }
)
#: keys that only say where the run lives (the resumed directory decides them).
LOCATION = frozenset({"name", "out_dir"})
#: top-level sections whose every key defines the run.
_DEFINING_SECTIONS = ("dataset", "dataset_options", "debiased", "method", "method_options", "model", "seed")


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"train": {"lr": 1}}`` -> ``{"train.lr": 1}``; a ``None`` section stays one key."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _why_refused(key: str) -> str:
    if key.split(".")[0] in _DEFINING_SECTIONS:
        return "defines the run"
    return "changes the optimisation the checkpoint holds"


_ABSENT = object()


def _show(v: Any) -> str:
    return "(absent)" if v is _ABSENT else repr(v)


def diff_configs(stored: dict[str, Any], requested: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Keys (dotted) whose values differ, as ``{key: (stored, requested)}``; absent keys shown as absent."""
    a, b = flatten(stored), flatten(requested)
    out = {}
    for key in sorted(set(a) | set(b)):
        if key in LOCATION:
            continue
        va, vb = a.get(key, _ABSENT), b.get(key, _ABSENT)
        if va != vb:
            out[key] = (va, vb)
    return out


def plan_resume(
    stored: dict[str, Any],
    requested: dict[str, Any],
    epochs_done: int,
    sources: dict[str, str] | None = None,
    where: str = "the run",
) -> dict[str, tuple[Any, Any]]:
    """Check a resume request; return the changes to apply (and record).

    Args:
        stored: the config the run was trained with (``RunConfig.to_dict()``).
        requested: the config asked for now (same form).
        epochs_done: epochs already committed.
        sources: optional ``{dotted key: "config.yaml" | "command line"}`` for messages.
        where: the run directory, for messages.

    Returns:
        ``{dotted key: (old, new)}`` of applied changes (empty when nothing changes).

    Raises:
        ConfigError: any refused change, all of them listed with old and new values.
    """
    sources = sources or {}
    changes = diff_configs(stored, requested)
    refused, applied = [], {}
    for key, (old, new) in changes.items():
        src = f" [{sources[key]}]" if key in sources else ""
        if key == "train.epochs" and new is not _ABSENT and int(new) < epochs_done:
            refused.append(f"  train.epochs: {old!r} -> {new!r}{src} (already trained {epochs_done} epochs)")
        elif key in APPLIED and new is not _ABSENT:
            applied[key] = (None if old is _ABSENT else old, new)
        else:
            refused.append(f"  {key}: {_show(old)} -> {_show(new)}{src} ({_why_refused(key)})")
    if refused:
        raise ConfigError(
            f"cannot resume {where} with a different configuration; these changes are refused:\n"
            + "\n".join(refused)
            + "\nUndo them (restore config.yaml, drop the options), or start a new run with --name "
            "(or --overwrite). A resume may change: " + ", ".join(sorted(APPLIED))
        )
    return applied
