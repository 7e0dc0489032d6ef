"""Input-level valuation of a black-box model against hand-computed games, brute force
and the feature-level valuator."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import Tensor, nn

from mmcoop.errors import ConfigError, DataError, MMCoopError
from mmcoop.models import ConcatFusion, MultimodalClassifier
from mmcoop.valuation import (
    VALUE_FUNCTIONS,
    InputValuator,
    ModalityValuator,
    coalition_masks,
    coalition_values,
    valuate_inputs,
)

from _helpers import HAND_TABLE, brute_force_shapley

pytestmark = pytest.mark.usefixtures("one_thread")


def score_forward(weights: dict[str, float], offset: float):
    """Two classes: logits ``[0, sum_k w_k * x_k.sum(-1) - offset]`` (row-wise, no matmul)."""

    def forward(inputs: dict[str, Tensor]) -> Tensor:
        s = sum(w * inputs[k].flatten(1).sum(1) for k, w in weights.items()) - offset
        return torch.stack([torch.zeros_like(s), s], 1)

    return forward


def brute_force_values(forward, inputs, labels, baselines, value, empty) -> Tensor:
    """Coalition values ``[B, 2**M]``: one full forward per coalition, absent inputs set to baseline."""
    names = list(inputs)
    masks = coalition_masks(len(names))
    logits = []
    for row in masks:
        x = {
            n: (
                inputs[n]
                if row[j]
                else torch.as_tensor(baselines.get(n, 0.0), dtype=inputs[n].dtype).expand_as(inputs[n])
            )
            for j, n in enumerate(names)
        }
        logits.append(forward(x))
    return coalition_values(torch.stack(logits, 1), labels, masks, value, empty)


# -- (2) hand-computed games ---------------------------------------------------------------------------
def test_two_modalities_paper_matches_hand_table() -> None:
    # class 1 iff a + 2v > 1.5 (over present inputs; absent = 0)
    fwd = score_forward({"a": 1.0, "v": 2.0}, 1.5)
    a = torch.tensor([[1.0], [2.0], [1.0], [0.1]])
    v = torch.tensor([[1.0], [0.5], [1.0], [0.1]])
    y = torch.tensor([1, 1, 0, 1])
    # (fused correct, a-only correct, v-only correct) worked out by hand from the scores:
    # s0: a -0.5, v 0.5, av 1.5 -> (1, 0, 1);  s1: a 0.5, v -0.5, av 1.5 -> (1, 1, 0)
    # s2 (label 0): a -0.5 right, v 0.5 wrong, av 1.5 wrong -> (0, 1, 0);  s3: all negative -> (0, 0, 0)
    expect = torch.tensor([HAND_TABLE[(1, 0, 1)], HAND_TABLE[(1, 1, 0)], HAND_TABLE[(0, 1, 0)], HAND_TABLE[(0, 0, 0)]])
    phi = valuate_inputs(fwd, {"a": a, "v": v}, y).phi
    assert torch.equal(phi, expect)
    # modality order follows the dict's insertion order
    assert torch.equal(valuate_inputs(fwd, {"v": v, "a": a}, y).phi, expect.flip(1))


def test_two_modalities_correct_with_model_empty() -> None:
    fwd = score_forward({"a": 1.0, "v": 2.0}, 1.5)
    # s2 above: v(empty) = 1 (all-zero input predicts class 0 = label), v(a) = 1, v(v) = 0, v(av) = 0
    # phi_a = ((1 - 1) + (0 - 0)) / 2 = 0, phi_v = ((0 - 1) + (0 - 1)) / 2 = -1
    res = InputValuator(fwd, value="correct", empty="model").attribute(
        {"a": torch.tensor([[1.0]]), "v": torch.tensor([[1.0]])}, torch.tensor([0])
    )
    assert torch.equal(res.values, torch.tensor([[1.0, 1.0, 0.0, 0.0]]))
    assert torch.equal(res.phi, torch.tensor([[0.0, -1.0]]))
    # the zero convention (default for "correct") drops v(empty): phi_a = (1 + 0) / 2, phi_v = (0 - 1) / 2
    assert torch.equal(
        valuate_inputs(
            fwd, {"a": torch.tensor([[1.0]]), "v": torch.tensor([[1.0]])}, torch.tensor([0]), value="correct"
        ).phi,
        torch.tensor([[0.5, -0.5]]),
    )


def test_two_modalities_prob_with_baselines_by_hand() -> None:
    fwd = score_forward({"a": 1.0, "v": 2.0}, 1.5)
    a, v, y = torch.tensor([[1.0]], dtype=torch.float64), torch.tensor([[1.0]], dtype=torch.float64), torch.tensor([1])
    ba, bv = 0.25, -0.5
    sig = lambda s: 1.0 / (1.0 + math.exp(-s))  # noqa: E731  P(class 1) for logits [0, s]
    p0, pa, pv, pav = sig(ba + 2 * bv - 1.5), sig(1 + 2 * bv - 1.5), sig(ba + 2 - 1.5), sig(1 + 2 - 1.5)
    expect = torch.tensor([[((pa - p0) + (pav - pv)) / 2, ((pv - p0) + (pav - pa)) / 2]], dtype=torch.float64)
    phi = valuate_inputs(fwd, {"a": a, "v": v}, y, baselines={"a": ba, "v": torch.tensor([bv])}, value="prob").phi
    torch.testing.assert_close(phi, expect, rtol=0, atol=1e-14)


def test_three_modalities_paper_by_hand() -> None:
    # class 1 iff sum of present inputs > 1.5; a = 2, b = c = 1, label 1:
    # v(a) = 1, v(b) = v(c) = 0, v(ab) = v(ac) = v(bc) = 2, v(abc) = 3;
    # phi_a = 1/3*1 + 1/6*2 + 1/6*2 + 1/3*1 = 4/3, phi_b = phi_c = 0 + 1/6*1 + 1/6*2 + 1/3*1 = 5/6.
    # second sample a = b = c = 1: v(S) = |S| iff |S| >= 2: symmetric, phi_k = 3/3 = 1 exactly
    fwd = score_forward({"a": 1.0, "b": 1.0, "c": 1.0}, 1.5)
    x = {"a": torch.tensor([[2.0], [1.0]]), "b": torch.tensor([[1.0], [1.0]]), "c": torch.tensor([[1.0], [1.0]])}
    phi = valuate_inputs(fwd, x, torch.tensor([1, 1])).phi
    torch.testing.assert_close(phi[0], torch.tensor([4 / 3, 5 / 6, 5 / 6]), rtol=0, atol=1e-7)
    assert torch.equal(phi[1], torch.ones(3))


@pytest.mark.parametrize("value", ["paper", "correct", "prob", "logprob"])
def test_three_modalities_brute_force(value: str) -> None:
    g = torch.Generator().manual_seed(3)
    w = torch.randn(3 * 4 + 2 + 6, 4, generator=g, dtype=torch.float64)

    def forward(inputs: dict[str, Tensor]) -> Tensor:  # nonlinear in the inputs
        z = torch.cat([inputs["x"].flatten(1), inputs["y"], inputs["z"]], 1)
        return torch.tanh(z @ w) * 3

    inputs = {
        "x": torch.randn(6, 3, 4, generator=g, dtype=torch.float64),
        "y": torch.randn(6, 2, generator=g, dtype=torch.float64),
        "z": torch.randn(6, 6, generator=g, dtype=torch.float64),
    }
    labels = torch.randint(0, 4, (6,), generator=g)
    baselines = {"x": torch.randn(3, 4, generator=g, dtype=torch.float64), "y": 0.5}
    res = InputValuator(forward, value=value).attribute(inputs, labels, baselines)
    ref_values = brute_force_values(forward, inputs, labels, baselines, value, None)
    torch.testing.assert_close(res.values, ref_values, rtol=0, atol=1e-12)
    torch.testing.assert_close(res.phi.double(), brute_force_shapley(ref_values, 3), rtol=0, atol=1e-12)
    assert res.method == "exact" and torch.equal(res.masks.cpu(), coalition_masks(3))
    assert res.stderr is None and res.values.shape == (6, 8) and res.coalition_preds.shape == (6, 8)


# -- (1) equal to the feature-level valuator where removing an input removes its feature ----------------
def zero_preserving_model(seed: int = 0) -> MultimodalClassifier:
    """Encoders without bias (0 -> 0 feature, one nonlinear), concat -> Linear head, float64."""
    torch.manual_seed(seed)
    d, c = 6, 4
    encoders = nn.ModuleDict(
        {
            "audio": nn.Sequential(
                nn.Flatten(), nn.Linear(2 * 5, 8, bias=False), nn.Tanh(), nn.Linear(8, d, bias=False)
            ),
            "visual": nn.Linear(7, d, bias=False),
            "text": nn.Sequential(nn.Linear(3, d, bias=False), nn.ReLU()),
        }
    )
    return MultimodalClassifier(["audio", "visual", "text"], encoders, ConcatFusion(3, d, c)).double().eval()


@pytest.mark.parametrize(
    ("value", "empty"),
    [("paper", None), ("correct", None), ("correct", "model"), ("prob", None), ("logprob", None), ("prob", "zero")],
)
def test_equals_feature_level_valuation(value: str, empty: str | None) -> None:
    model = zero_preserving_model()
    g = torch.Generator().manual_seed(1)
    inputs = {
        "audio": torch.randn(20, 2, 5, generator=g, dtype=torch.float64),
        "visual": torch.randn(20, 7, generator=g, dtype=torch.float64),
        "text": torch.randn(20, 3, generator=g, dtype=torch.float64),
    }
    labels = torch.randint(0, 4, (20,), generator=g)
    feat = ModalityValuator(model, value, empty).attribute(inputs, labels)
    inp = InputValuator(model, value, empty, batch_size=50).attribute(inputs, labels)
    assert torch.equal(inp.coalition_preds, feat.coalition_preds)
    assert torch.equal(inp.masks, feat.masks)
    if value in ("paper", "correct"):  # integer games: identical phi
        assert torch.equal(inp.values, feat.values)
        assert torch.equal(inp.phi, feat.phi)
        assert torch.equal(valuate_inputs(model, inputs, labels, value=value, empty=empty).phi, feat.phi)
    else:  # same game up to the float rounding of two summation orders
        torch.testing.assert_close(inp.values, feat.values, rtol=0, atol=1e-12)
        torch.testing.assert_close(inp.phi, feat.phi, rtol=0, atol=1e-12)


def test_module_runs_in_eval_mode_and_modes_are_restored() -> None:
    torch.manual_seed(0)
    bn = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    bn.train()
    with torch.no_grad():
        bn(torch.randn(16, 3) * 3 + 1)  # non-trivial running statistics
    fwd = nn.ModuleDict({"m": bn})

    class Wrap(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = fwd

        def forward(self, inputs: dict[str, Tensor]) -> Tensor:
            return self.body["m"](inputs["a"] + inputs["b"])

    model = Wrap().train()
    x = {"a": torch.randn(5, 3), "b": torch.randn(5, 3)}
    y = torch.randint(0, 2, (5,))
    per_row = InputValuator(model, "prob", batch_size=1).attribute(x, y)
    whole = InputValuator(model, "prob", batch_size=20).attribute(x, y)
    torch.testing.assert_close(per_row.values, whole.values)  # training-mode BN could not give one row alone
    assert model.training and bn[1].training


# -- (3) efficiency -----------------------------------------------------------------------------------------
@settings(max_examples=25, deadline=None)
@given(
    m=st.integers(1, 4),
    b=st.integers(1, 5),
    seed=st.integers(0, 10_000),
    value=st.sampled_from(["paper", "correct", "prob", "logprob"]),
    empty=st.sampled_from([None, "zero", "model"]),
    chunk=st.sampled_from([None, 1, 3, 64]),
)
def test_efficiency(m: int, b: int, seed: int, value: str, empty: str | None, chunk: int | None) -> None:
    g = torch.Generator().manual_seed(seed)
    names = [f"m{k}" for k in range(m)]
    w = {n: torch.randn(2, 3, generator=g, dtype=torch.float64) for n in names}

    def forward(inputs: dict[str, Tensor]) -> Tensor:
        return sum(torch.sin(inputs[n] @ w[n]) for n in names) * 2

    inputs = {n: torch.randn(b, 2, generator=g, dtype=torch.float64) for n in names}
    baselines = {names[0]: torch.randn(b, 2, generator=g, dtype=torch.float64)}
    labels = torch.randint(0, 3, (b,), generator=g)
    res = InputValuator(forward, value, empty, batch_size=chunk).attribute(inputs, labels, baselines)
    # v(N) and v(empty) from two independent forward passes
    full = forward(inputs)
    none = forward({n: baselines.get(n, torch.zeros_like(inputs[n])) for n in names})
    all_mask, no_mask = torch.ones(1, m, dtype=torch.bool), torch.zeros(1, m, dtype=torch.bool)
    v_full = coalition_values(full.unsqueeze(1), labels, all_mask, value, empty)[:, 0]
    v_none = coalition_values(none.unsqueeze(1), labels, no_mask, value, empty)[:, 0]
    torch.testing.assert_close(res.phi.sum(1), v_full - v_none, rtol=0, atol=1e-9)
    resolved = empty or VALUE_FUNCTIONS.get(value).default_empty
    if resolved == "zero":
        assert torch.equal(res.values[:, 0], torch.zeros(b, dtype=res.values.dtype))


# -- (4) chunking ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["paper", "logprob"])
def test_chunking_is_identical(value: str) -> None:
    g = torch.Generator().manual_seed(7)
    fwd = score_forward({"a": 1.0, "b": -0.7, "c": 0.4, "d": 1.3}, 0.2)
    inputs = {k: torch.randn(9, 3, generator=g) for k in "abcd"}
    labels = torch.randint(0, 2, (9,), generator=g)
    baselines = {"b": 0.3, "d": torch.randn(9, 3, generator=g)}
    calls: list[int] = []

    def counted(x: dict[str, Tensor]) -> Tensor:
        calls.append(next(iter(x.values())).shape[0])
        return fwd(x)

    ref = InputValuator(counted, value).attribute(inputs, labels, baselines)
    assert calls == [9] * 16  # default: one coalition (B rows) per call
    for bs in (1, 4, 9, 10, 50, 144, 1000):
        calls.clear()
        res = InputValuator(counted, value, batch_size=bs).attribute(inputs, labels, baselines)
        assert max(calls) <= bs and sum(calls) == 16 * 9 and len(calls) == math.ceil(144 / bs)
        assert torch.equal(res.phi, ref.phi) and torch.equal(res.values, ref.values)
        assert torch.equal(res.coalition_preds, ref.coalition_preds)


# -- (5) errors --------------------------------------------------------------------------------------------------
def test_errors() -> None:
    fwd = score_forward({"a": 1.0, "v": 1.0}, 0.0)
    x = {"a": torch.ones(3, 2), "v": torch.ones(3, 2)}
    with pytest.raises(ConfigError, match=r"labels must be .*\[3\]"):
        valuate_inputs(fwd, x, torch.zeros(4, dtype=torch.long))
    with pytest.raises(ConfigError, match=r"labels must be"):
        valuate_inputs(fwd, x, torch.zeros(3, 1, dtype=torch.long))
    with pytest.raises(ConfigError, match=r"unknown modalities \['audio'\]"):
        valuate_inputs(fwd, x, torch.zeros(3, dtype=torch.long), baselines={"audio": 0.0})
    with pytest.raises(ConfigError, match=r"baselines\['v'\] of shape \(4, 2\)"):
        valuate_inputs(fwd, x, torch.zeros(3, dtype=torch.long), baselines={"v": torch.zeros(4, 2)})
    with pytest.raises(ConfigError, match="same batch size"):
        valuate_inputs(fwd, {"a": torch.ones(3, 2), "v": torch.ones(2, 2)}, torch.zeros(3, dtype=torch.long))
    with pytest.raises(ConfigError, match="non-empty"):
        valuate_inputs(fwd, {}, torch.zeros(3, dtype=torch.long))
    with pytest.raises(ConfigError, match="batch_size"):
        InputValuator(fwd, batch_size=0)
    with pytest.raises(ConfigError, match="unknown empty-coalition"):
        InputValuator(fwd, empty="none")
    with pytest.raises(MMCoopError, match=r"logits \[R, C\]"):
        valuate_inputs(lambda d: d["a"].sum(1), x, torch.zeros(3, dtype=torch.long))


def test_empty_batch() -> None:
    fwd = score_forward({"a": 1.0, "v": 1.0}, 0.0)
    res = InputValuator(fwd).attribute({"a": torch.ones(0, 2), "v": torch.ones(0, 2)}, torch.zeros(0, dtype=torch.long))
    assert res.phi.shape == (0, 2) and res.values.shape == (0, 4) and res.coalition_preds.shape == (0, 4)


def test_returns_a_valuation_table_like_valuate_dataset() -> None:
    fwd = score_forward({"a": 1.0, "v": 2.0}, 1.5)
    a = torch.tensor([[1.0], [2.0], [1.0], [0.1]])
    v = torch.tensor([[1.0], [0.5], [1.0], [0.1]])
    y = torch.tensor([1, 1, 0, 1])
    table = valuate_inputs(fwd, {"a": a, "v": v}, y, index=torch.tensor([10, 11, 12, 13]))
    assert table.modalities == ["a", "v"] and len(table) == 4
    assert table.values.shape == (4, 4) and table.coalition_preds.shape == (4, 4)
    assert table.index.tolist() == [10, 11, 12, 13] and torch.equal(table.label, y)
    # the hand-computed cases of test_two_modalities_paper_by_hand: fused correct on s0 and s1 only
    assert table.accuracy() == 0.5 and table.unimodal_accuracy() == {"a": 0.5, "v": 0.25}
    df = table.to_pandas()
    assert len(df) == 4 and {"phi_a", "phi_v"} <= set(df.columns)
    assert df["phi_a"].tolist() == table.phi[:, 0].tolist()


def test_string_sample_ids() -> None:
    fwd = score_forward({"a": 1.0, "v": 2.0}, 1.5)
    a, v, y = torch.tensor([[1.0], [2.0], [0.1]]), torch.tensor([[1.0], [0.5], [0.1]]), torch.tensor([1, 1, 0])
    table = valuate_inputs(fwd, {"a": a, "v": v}, y, index=["clip_a", "clip_b", "[/]c"])  # ids as the index
    assert table.sample_id == ["clip_a", "clip_b", "[/]c"] and table.index.tolist() == [0, 1, 2]
    assert table.to_pandas()["sample_id"].tolist() == ["clip_a", "clip_b", "[/]c"]
    assert list(table.sample("clip_b")["phi"].values()) == pytest.approx(table.phi[1].tolist())
    table = valuate_inputs(fwd, {"a": a, "v": v}, y, index=[7, 8, 9], ids=["x", "y", "z"])
    assert table.index.tolist() == [7, 8, 9] and table.sample_id == ["x", "y", "z"]
    assert valuate_inputs(fwd, {"a": a, "v": v}, y).sample_id == ["0", "1", "2"]
    with pytest.raises(DataError, match="valuate_inputs ids: 2 sample ids for 3"):
        valuate_inputs(fwd, {"a": a, "v": v}, y, ids=["x", "y"])
    with pytest.raises(DataError, match="'x' is used by rows 0 and 1"):
        valuate_inputs(fwd, {"a": a, "v": v}, y, index=["x", "x", "z"])
    with pytest.raises(ConfigError, match="one row number per sample"):
        valuate_inputs(fwd, {"a": a, "v": v}, y, index=[1, 2])
    with pytest.raises(ConfigError, match="as ids="):
        valuate_inputs(fwd, {"a": a, "v": v}, y, index=["p", "q", "r"], ids=["x", "y", "z"])


@pytest.mark.parametrize("m", [2, 3])
@pytest.mark.parametrize("value", ["prob", "correct"])
def test_matches_captum_shapley_values(m: int, value: str) -> None:
    """Captum's ShapleyValues with one feature group per modality enumerates all M! orders: exact."""
    captum_attr = pytest.importorskip("captum.attr")  # a dev dependency; CI installs it
    g = torch.Generator().manual_seed(10 + m)
    names = [f"x{k}" for k in range(m)]
    dims = [3 + k for k in range(m)]
    w = [torch.randn(d, 5, generator=g, dtype=torch.float64) for d in dims]

    def logits_of(xs: list[Tensor]) -> Tensor:
        return torch.tanh(sum(x @ wk for x, wk in zip(xs, w)))  # [B, 5], non-linear in the coalition

    inputs = {n: torch.randn(12, d, generator=g, dtype=torch.float64) for n, d in zip(names, dims)}
    labels = torch.randint(0, 5, (12,), generator=g)
    base = {n: 0.1 * torch.randn(1, d, generator=g, dtype=torch.float64) for n, d in zip(names, dims)}

    def score(*xs: Tensor) -> Tensor:  # Captum's forward: one value per row (the coalition's value)
        out = logits_of(list(xs))
        if value == "prob":
            return out.softmax(-1).gather(1, labels.view(-1, 1)).squeeze(1)
        return (out.argmax(-1) == labels).double()

    masks = tuple(torch.full((1, d), k) for k, d in enumerate(dims))  # one group per modality
    ref = captum_attr.ShapleyValues(score).attribute(
        tuple(inputs[n] for n in names), baselines=tuple(base[n] for n in names), feature_mask=masks
    )
    ref_phi = torch.stack([r[:, 0] for r in ref], 1)
    table = valuate_inputs(
        lambda d: logits_of([d[n] for n in names]), inputs, labels, baselines=base, value=value, empty="model"
    )
    # Captum accumulates its attributions in float32: agreement to float32 rounding
    torch.testing.assert_close(table.phi.double(), ref_phi.double(), rtol=0, atol=1e-6)
