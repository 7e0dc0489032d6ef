"""Transformer encoders (tokens, sequence), freezing, learning-rate groups, and the text / three-sequence
fixtures trained through the real loop (sample- and modality-level re-sampling) and valued exactly."""

from __future__ import annotations

import pytest
import torch
import yaml

from _helpers import brute_force_shapley
from _runs import tiny_cfg
from mmcoop.data import ModalitySpec
from mmcoop.errors import ConfigError, DataError
from mmcoop.experiment import RunConfig, load_run, run_experiment
from mmcoop.models import ENCODERS, build_model
from mmcoop.models.transformer import SequenceTransformer, TokenTransformer
from mmcoop.train.loop import param_groups
from mmcoop.valuation import valuate_dataset

pytestmark = pytest.mark.usefixtures("one_thread")

TOK = ModalitySpec("text", "tokens", (6,), pad_id=1, vocab_size=20)


def _truncated(model: torch.nn.Module, cls, shape, **kw) -> torch.nn.Module:
    """The same weights on a shorter input length (the position table cut)."""
    short = cls(shape, **kw).eval()
    state = dict(model.state_dict())
    state["trunk.pos"] = state["trunk.pos"][:, : shape[0] + 1]
    short.load_state_dict(state)
    return short


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_padding_is_masked_out(pooling: str) -> None:
    """Trailing padding changes nothing: the features equal those of the unpadded texts."""
    torch.manual_seed(0)
    enc = TokenTransformer((6,), dim=8, spec=TOK, pooling=pooling, width=16, heads=2).eval()
    ids = torch.tensor([[3, 4, 5, 6, 1, 1], [7, 8, 9, 10, 1, 1]])
    short = _truncated(enc, TokenTransformer, (4,), dim=8, spec=TOK, pooling=pooling, width=16, heads=2)
    with torch.no_grad():
        torch.testing.assert_close(enc(ids), short(ids[:, :4]))
        assert not torch.allclose(enc(ids), enc(ids.roll(1, dims=1)))  # positions matter
        blank = enc(torch.full((2, 6), TOK.pad_id))  # the input-level baseline: all padding
    assert blank.shape == (2, 8) and torch.isfinite(blank).all()


def test_sequence_transformer_masks_zero_steps() -> None:
    torch.manual_seed(0)
    enc = SequenceTransformer((5, 3), dim=4, mask_zeros=True, pooling="mean", width=8, heads=2).eval()
    x = torch.randn(2, 5, 3)
    x[:, 3:] = 0
    short = _truncated(enc, SequenceTransformer, (3, 3), dim=4, mask_zeros=True, pooling="mean", width=8, heads=2)
    with torch.no_grad():
        torch.testing.assert_close(enc(x), short(x[:, :3]))
    assert ENCODERS.get("tokens") is TokenTransformer and ENCODERS.get("transformer-sequence") is SequenceTransformer


def test_token_encoder_refuses_bad_ids_and_unknown_vocab() -> None:
    enc = TokenTransformer((6,), dim=4, spec=TOK)
    with pytest.raises(DataError, match="outside the vocabulary of 20"):
        enc(torch.full((1, 6), 20))
    with pytest.raises(DataError, match="int64 ids"):
        enc(torch.zeros(1, 6))
    with pytest.raises(ConfigError, match="vocabulary size is unknown"):
        TokenTransformer((6,), spec=ModalitySpec("t", "tokens", (6,)))
    with pytest.raises(ConfigError, match="unknown pooling 'max'"):
        TokenTransformer((6,), spec=TOK, pooling="max")


def test_frozen_encoder_gets_no_gradient_and_stays_in_eval_mode() -> None:
    specs = [ModalitySpec("v", "vector", (4,)), TOK]
    model = build_model(specs, 3, dim=8, encoder_options={"text": {"freeze": True, "dropout": 0.5}}).train()
    assert not model.encoders["text"].training and model.encoders["v"].training
    x = {"v": torch.randn(4, 4), "text": torch.randint(2, 20, (4, 6))}
    torch.nn.functional.cross_entropy(model(x), torch.tensor([0, 1, 2, 0])).backward()
    assert all(p.grad is None and not p.requires_grad for p in model.encoders["text"].parameters())
    assert all(p.grad is not None for p in model.encoders["v"].parameters())
    with pytest.raises(ConfigError, match="train.lr_groups"):
        build_model(specs, 3, encoder_options={"text": {"lr_mult": 0.1}})


def test_param_groups_by_longest_prefix() -> None:
    model = build_model([ModalitySpec("a", "vector", (3,)), ModalitySpec("b", "vector", (3,))], 2, dim=4)
    named = list(model.named_parameters())
    groups = param_groups(named, 0.01, {"encoders.a": 0.1, "encoders.a.net.0": 2.0})
    by = {g["name"]: g for g in groups}
    assert [g["name"] for g in groups] == ["default", "encoders.a", "encoders.a.net.0"]
    assert by["encoders.a"]["lr"] == pytest.approx(0.001) and by["encoders.a.net.0"]["lr"] == pytest.approx(0.02)
    assert sum(len(g["params"]) for g in groups) == len(named)
    ids = {id(p) for p in by["encoders.a.net.0"]["params"]}
    assert ids == {id(p) for n, p in named if n.startswith("encoders.a.net.0.")}
    with pytest.raises(ConfigError, match=r"\['encoders.c'\] match no trainable parameter"):
        param_groups(named, 0.01, {"encoders.c": 0.5})


def test_lr_mult_lands_in_the_resolved_config(tmp_path) -> None:
    opts = {"encoder_options": {"m0": {"lr_mult": 0.25}}}
    cfg = tiny_cfg(tmp_path, model={"dim": 8, "options": opts}, train={"epochs": 1})
    assert cfg.train.lr_groups == {"encoders.m0": 0.25} and cfg.model.options["encoder_options"] == {"m0": {}}
    res = run_experiment(cfg)
    saved = yaml.safe_load((res.run_dir / "config.yaml").read_text())
    assert saved["train"]["lr_groups"] == {"encoders.m0": 0.25}
    assert RunConfig.from_dict(saved).train.lr_groups == {"encoders.m0": 0.25}  # reloads to the same groups
    with pytest.raises(ConfigError, match="contradicts train.lr_groups"):
        tiny_cfg(tmp_path, model={"options": opts}, train={"lr_groups": {"encoders.m0": 0.5}})


def _fuse_values(model, data) -> tuple[torch.Tensor, torch.Tensor]:
    """Brute force: the paper's value ``|S| * correct`` of every coalition (bitmask order) by
    running ``fuse`` with each keep-mask, and the Shapley values by all M! orderings."""
    inputs, labels = data.inputs, data.labels
    m = len(data.modalities)
    with torch.no_grad():
        feats = model.encode(inputs)
        cols = []
        for c in range(2**m):
            keep = torch.tensor([bool(c >> k & 1) for k in range(m)]).expand(len(labels), m)
            correct = (model.fuse(feats, keep).argmax(-1) == labels).double()
            cols.append(correct * bin(c).count("1"))
    values = torch.stack(cols, 1)
    return values, brute_force_shapley(values, m)


def test_image_text_trains_with_sample_level_resampling_and_values(tmp_path) -> None:
    """The offline tokenizer + the from-scratch tokens transformer: re-sampled, valued, sample ids kept."""
    cfg = RunConfig.from_dict(
        {
            "name": "it",
            "out_dir": str(tmp_path),
            "data": {"target": "_text_fixtures:image_text"},
            "method": "sample-level",
            "method_options": {"warmup": 1},
            "model": {"dim": 8, "options": {"encoder_options": {"text": {"width": 16, "heads": 2, "layers": 1}}}},
            "train": {"epochs": 2, "batch_size": 16, "progress": False, "device": "cpu"},
        }
    )
    res = run_experiment(cfg)
    assert res.history[-1]["copies_text"] + res.history[-1]["copies_image"] > 0  # epoch 2 re-sampled
    _, model, splits = load_run(res.run_dir)
    assert splits.test.specs[1].kind == "tokens"
    table = valuate_dataset(model, splits.test, batch_size=10, split="test", fold_bn=False)
    assert table.sample_id[:2] == ["test-0", "test-1"]
    _, phi = _fuse_values(model, splits.test)
    torch.testing.assert_close(table.phi.double(), phi)


@pytest.mark.parametrize("method", ["sample-level", "modality-level"])
def test_three_sequences_resampled_and_valued_exactly(tmp_path, method: str) -> None:
    cfg = RunConfig.from_dict(
        {
            "name": method,
            "out_dir": str(tmp_path),
            "data": {"target": "_text_fixtures:three_sequences"},
            "method": method,
            "method_options": {"warmup": 1},
            "model": {
                "dim": 8,
                "options": {
                    "encoders": {"vision": "transformer-sequence", "audio": "sequence", "text": "transformer-sequence"},
                    "encoder_options": {m: {"width": 8, "heads": 2, "layers": 1} for m in ("vision", "text")},
                },
            },
            "train": {"epochs": 2, "batch_size": 20, "progress": False, "device": "cpu"},
        }
    )
    res = run_experiment(cfg)
    assert "contrib_audio" in res.history[-1]  # valued during training for the re-sampling plan
    _, model, splits = load_run(res.run_dir)
    table = valuate_dataset(model, splits.test, batch_size=7, split="test")
    assert table.num_modalities == 3
    values, phi = _fuse_values(model, splits.test)
    torch.testing.assert_close(table.phi.double(), phi, atol=1e-6, rtol=0)
    assert torch.allclose(phi.sum(1), values[:, 7] - values[:, 0])  # efficiency
