"""Run report, first sections: setup, test results, training curves, dataset-level contributions."""

from __future__ import annotations

from typing import Any, Mapping

from mmcoop.report import plots
from mmcoop.report.format import fmt, is_pct_key, kv, table
from mmcoop.report.loaders import RunData
from mmcoop.report.page import Page


def config_rows(run: RunData) -> list[dict[str, Any]]:
    """What the run really used: a user's model/data target and its options, else the built-in's settings."""
    c = run.config
    train = v if isinstance(v := c.get("train"), dict) else {}
    model = v if isinstance(v := c.get("model"), dict) else {}
    data = v if isinstance(v := c.get("data"), dict) else {}
    if model.get("target"):  # a user builder: name/dim/fusion are unused defaults
        model_text = f"{model['target']} (your code)" + (f"; {kv(model['options'])}" if model.get("options") else "")
    elif model:
        model_text = kv({k: v for k, v in model.items() if k != "target" and v not in (None, {}, [])})
    else:
        model_text = None
    data_text = None
    if data.get("target"):
        data_text = f"{data['target']} (your code)" + (f"; {kv(data['options'])}" if data.get("options") else "")
    rows = [
        ("run", run.name),
        ("dataset", run.dataset_name),
        ("data", data_text),
        ("method", run.method),
        ("method options", c.get("method_options") or None),
        ("debiased", c.get("debiased")),
        ("dataset options", c.get("dataset_options") or None),
        ("modalities", ", ".join(run.modalities) or None),
        ("model", model_text),
        (
            "training",
            ", ".join(
                f"{k}={train[k]}"
                for k in ("epochs", "batch_size", "optimizer", "lr", "weight_decay", "step_size", "gamma", "amp")
                if k in train
            )
            or None,
        ),
        ("seed", c.get("seed")),
        ("epochs run", len(run.metrics) if not run.metrics.empty else None),
    ]
    out = []
    for k, v in rows:
        if v is None:  # not used by this run: left out rather than shown as a default
            continue
        if isinstance(v, dict):
            v = kv(v)
        out.append({"setting": k, "value": str(v)})
    return out


def results_rows(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for k, v in results.items():
        if isinstance(v, (dict, list)):
            continue
        rows.append({"metric": k, "value": fmt(v, pct=is_pct_key(k) and not k.startswith("best_epoch"))})
    return rows


def setup_sections(page: Page, run: RunData, missing: list[str]) -> None:
    """Setup (what the run used) and the test results; a missing ``results.json`` is listed in ``missing``."""
    page.h2("setup", "Setup")
    page.add(table(config_rows(run), ["setting", "value"], pct=[], left=["setting", "value"], wrap=["value"]))
    if run.results:
        page.h2("results", "Test results (best-validation model)")
        page.add(table(results_rows(run.results), ["metric", "value"], pct=[], left=["metric"]))
    else:
        missing.append("Test results: No results.json (the run has not finished, or was interrupted before testing).")


def training_sections(page: Page, run: RunData, missing: list[str]) -> None:
    """Training curves (accuracy and losses per epoch, all of metrics.jsonl) and contributions per epoch."""
    mods = run.modalities
    best = run.results.get("best_epoch")
    acc_png = plots.accuracy_figure(run.metrics, mods, best if isinstance(best, int) else None)
    if acc_png is not None or not run.metrics.empty:
        page.h2("training", "Training curves")
        page.image(
            "accuracy", acc_png, "accuracy per epoch: validation (fused and per modality alone) and training; losses"
        )
        if not run.metrics.empty:
            records = run.metrics.to_dict("records")
            page.add("<details><summary>metrics.jsonl (all epochs)</summary>" + table(records) + "</details>")
    else:
        missing.append("Training curves: no metrics.jsonl (or no epoch finished yet).")

    contrib_png = plots.contribution_figure(run.metrics, mods)
    if contrib_png is not None:
        page.h2("contribution", "Dataset-level contribution per epoch")
        page.image(
            "contribution",
            contrib_png,
            "mean Shapley value per modality (contrib_<m>) and planned re-sampling copies (copies_<m>) per epoch",
        )
