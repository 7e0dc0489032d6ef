"""Peer methods of issue 11; each module registers itself in ``METHODS`` (imported on first read).

Each module wires one method's pure core (`mmcoop.methods.functional`) into the training
step; its docstring cites the paper and the official code, lists the defaults, every
deliberate difference and how the method handles ``M > 2`` modalities.

- ``ogm-ge`` (`.ogm_ge`): OGM-GE, CVPR 2022 -- gradient modulation of the dominant encoder.
- ``opm`` (`.opm`): OPM, TPAMI 2024 -- dropping the dominant modality's features.
- ``pmr`` (`.pmr`): PMR, CVPR 2023 -- prototype loss for the weak modality.
- ``agm`` (`.agm`): AGM, ICCV 2023 -- Shapley mono-modal responses, adaptive gradient scale.
- ``mla`` (`.mla`): MLA, CVPR 2024 -- alternating unimodal steps through a shared head.
- ``mmpareto`` (`.mmpareto`): MMPareto, ICML 2024 -- Pareto combination of multimodal and
  unimodal gradients.
- ``mmcosine`` (`.mmcosine`): MMCosine, ICASSP 2023 -- per-modality cosine logits, summed.
- ``cml`` (`.cml`): CML, ICML 2023 -- confidence may not rise when a modality is removed.
- ``mbsd`` (`.mbsd`): MBSD as BalanceBenchmark implements it -- unimodal CEs plus weighted pairwise distillation.
- ``amco`` (`.amco`): AMCo, ICASSP 2024 -- adaptive class masking of the dominant modality.
- ``lfm`` (`.lfm`): LFM, NeurIPS 2024 -- CE plus unimodal alignment, weights learnt per epoch.
- ``umt`` (`.umt`): UMT, ICML 2023 -- unimodal teachers trained in-method, feature distillation.
- The other peers (G-Blending, ReconBoost, Diagnosing & Re-learning, CGGM, InfoReg, Greedy):
  see their modules.
"""
