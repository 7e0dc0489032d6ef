import os

import pytest
import torch

from mmcoop.errors import ConfigError
from mmcoop.utils import Registry, atomic_torch_save, atomic_write_text


def test_registry_error_lists_valid_names():
    reg = Registry("widget")
    reg.register("b")(1)
    reg.register("a")(2)
    assert reg.get("a") == 2 and reg.names() == ["a", "b"]
    with pytest.raises(ConfigError, match="unknown widget 'c'; valid widgets: a, b"):
        reg.get("c")
    with pytest.raises(ValueError):
        reg.register("a")(3)


def test_atomic_write_keeps_old_file_when_writing_fails(tmp_path):
    p = tmp_path / "x.txt"
    atomic_write_text(p, "old")

    class Boom:
        def __reduce__(self):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        atomic_torch_save({"x": Boom()}, p)
    assert p.read_text() == "old"
    assert os.listdir(tmp_path) == ["x.txt"]  # no temp file left behind
    atomic_torch_save({"t": torch.ones(2)}, p)
    assert torch.load(p)["t"].sum() == 2
