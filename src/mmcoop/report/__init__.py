"""Report layer: tables and pictures of a run or a comparison, from run directories only.

Reads the files a run leaves (``config.yaml``, ``dataset.json``, ``metrics.jsonl``,
``results.json``, ``valuation/*.parquet``) and a comparison's ``compare.csv`` /
``summary.csv``; never imports the training stack.

- `write_report`: ``<dir>/report.html`` (self-contained, PNGs embedded) and
  ``<dir>/plots/*.png`` for a run or a compare directory; a comparison's report opens
  with the paper's Figure 1 (``plots/figure1_gain.png``: mean gain over joint training
  per method with its 95% interval, at equal epochs and at equal compute, from the
  ``gain_*`` columns that ``mmcoop compare`` writes to summary.csv / compare.csv).
- `degraded_auc`: how well per-sample Shapley values find the degraded modality
  of a debiased dataset (AUC per modality, lowest-phi hit rate).
- `summarize_contributions`, `per_class_contributions`: per-modality and
  per-class summaries of a valuation parquet.
- `rank_auc`: rank-based (Mann–Whitney) ROC AUC with averaged ties.
"""

from mmcoop.report.html import write_report
from mmcoop.report.loaders import (
    CompareData,
    RunData,
    degraded_auc,
    list_valuations,
    load_compare_dir,
    load_run_dir,
    per_class_contributions,
    rank_auc,
    metrics_frame,
    read_valuation,
    summarize_contributions,
)

__all__ = [
    "CompareData",
    "RunData",
    "degraded_auc",
    "list_valuations",
    "load_compare_dir",
    "load_run_dir",
    "per_class_contributions",
    "rank_auc",
    "metrics_frame",
    "read_valuation",
    "summarize_contributions",
    "write_report",
]
