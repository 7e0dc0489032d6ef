"""MLA: multimodal learning with alternating unimodal adaptation.

Paper: Zhang, Yoon, Bansal, Yao, "Multimodal Representation Learning by Alternating Unimodal
Adaptation", CVPR 2024. Code read:
Cecile-hi/Multimodal-Learning-with-Alternating-Unimodal-Adaptation ``main.py``
(``train_epoch`` with ``gs_flag``, ``calculate_entropy``, ``calculate_gating_weights``, ``valid``)
and ``utils/utils.py`` ``GSPlugin.before_update``; GeWu-Lab/BalanceBenchmark
``balancemm/trainer/MLA_trainer.py`` and ``models/avclassify_model.py``
``calculate_gating_weights``.

Official arithmetic. Training: per batch, for each modality ``m`` in turn: logits
``head(z_m)`` with ONE head shared by all modalities, CE loss, backward, the head's weight
gradient is modified by the projector ``P`` (below), optimizer step. Projector (an OWM/RLS
update with the batch-mean feature ``r = mean_i z_m,i`` ``[1, D]``):
``a = 0.1 ** (batch_idx / n_batches + 1)``, ``k = P r^T``, ``P <- P - k k^T / (a + r k)``,
``P <- P / ||P||_F``, then ``grad_W <- grad_W P^T``; skipped on the very first update
(``exp_count == 0``), ``P`` starts at ``I``. Inference with ``--dynamic``: weights
``w_m = exp(H_max - H_m) / sum_j exp(H_max - H_j)`` from the prediction entropies ``H_m``
(i.e. ``softmax(-H)``), fused logits ``sum_m w_m * head(z_m)``; otherwise fixed
``av_alpha = 0.5`` (3 modalities: 0.35 / 0.25 / 0.4).

Deliberate differences:

* Entropy per sample (softmax over classes, as the paper and BalanceBenchmark). The
  official ``calculate_entropy`` uses ``softmax(dim=0)`` over the whole ``[B, C]`` batch and
  sums, giving one weight per modality per batch that depends on the batch's composition.
* The official ``before_update`` only fires for a parameter named ``"module.weight"``, but
  the shared head is a plain ``nn.Linear`` (names ``weight``/``bias``), so at HEAD the
  projection never runs; BalanceBenchmark matches ``"weight"`` but *adds* the projection
  (``g <- g + g P^T``). We expose the paper's replacement ``g <- g P^T``; the wiring decides
  whether to use it.
"""

from __future__ import annotations

from torch import Tensor


def prediction_entropy(logits: Tensor) -> Tensor:
    """Per-sample entropy of ``softmax(logits)`` over the last axis (``[..., C] -> [...]``)."""
    logp = logits.log_softmax(dim=-1)
    return -(logp.exp() * logp).sum(dim=-1)


def mla_fusion_weights(logits: Tensor) -> Tensor:
    """Dynamic fusion weights ``[M, B]`` = ``softmax_m(-H_m)`` from stacked logits ``[M, B, C]``."""
    return (-prediction_entropy(logits)).softmax(dim=0)


def mla_fuse(logits: Tensor, weights: Tensor | None = None) -> Tensor:
    """Fused logits ``[B, C]``: ``sum_m w_m * logits[m]`` (dynamic weights if ``weights`` is None)."""
    w = mla_fusion_weights(logits) if weights is None else weights
    if w.dim() == 1:
        w = w.view(-1, 1).expand(-1, logits.shape[1])
    return (w.unsqueeze(-1) * logits).sum(dim=0)


def mla_projection_alpha(batch_index: int, num_batches: int) -> float:
    """``0.1 ** (batch_index / num_batches + 1)`` (the RLS regulariser of the projector update)."""
    return 0.1 ** (batch_index / num_batches + 1)


def mla_update_projector(projector: Tensor, features: Tensor, alpha: float) -> Tensor:
    """One projector update from the batch features ``[B, D]``; returns the new ``[D, D]``."""
    r = features.detach().to(projector.dtype).mean(dim=0, keepdim=True)  # [1, D]
    k = projector @ r.t()  # [D, 1]
    p = projector - (k @ k.t()) / (alpha + (r @ k))
    return p / p.norm(p="fro")


def mla_project_grad(grad: Tensor, projector: Tensor) -> Tensor:
    """Head weight gradient ``[C, D]`` replaced by ``grad @ P^T``."""
    return grad @ projector.t().to(grad.dtype)
