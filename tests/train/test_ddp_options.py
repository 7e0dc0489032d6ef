"""Which methods turn on DDP's unused-parameter detection, and the DDP arguments (no deprecated one)."""

import inspect

import pytest
from torch import nn

from mmcoop.errors import ConfigError
from mmcoop.methods import METHODS, build_method
from mmcoop.train import TrainConfig
from mmcoop.train.distributed import ddp_options


def test_ddp_options_use_the_current_buffer_argument() -> None:
    params = inspect.signature(nn.parallel.DistributedDataParallel.__init__).parameters
    opts = ddp_options(True)
    assert opts["find_unused_parameters"] is True and ddp_options(False)["find_unused_parameters"] is False
    if "forward_sync_buffers" in params:  # PyTorch that deprecates broadcast_buffers
        assert opts == {"find_unused_parameters": True, "forward_sync_buffers": False}
    else:
        assert opts == {"find_unused_parameters": True, "broadcast_buffers": False}


def test_only_methods_that_can_skip_an_encoder_ask_for_detection() -> None:
    skipping = {name for name in METHODS.names() if build_method(name).skips_encoders()}
    # default execution: duplicate; mmcosine leaves the fusion bias out of its cosine loss
    assert skipping == {"unimodal", "sample-level", "modality-level", "greedy", "mmcosine", "remix"}
    assert not build_method("sample-level", {"execution": "weighted"}).skips_encoders()
    assert not build_method("modality-level", {"execution": "weighted"}).skips_encoders()


def test_find_unused_parameters_config() -> None:
    assert TrainConfig().find_unused_parameters is None
    assert TrainConfig(find_unused_parameters=True).find_unused_parameters is True
    with pytest.raises(ConfigError, match="find_unused_parameters"):
        TrainConfig(find_unused_parameters="yes")  # type: ignore[arg-type]
