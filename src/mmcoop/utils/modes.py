"""Train/eval modes: switch modules to eval mode for a block and restore every submodule's own mode."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from torch import nn


@contextlib.contextmanager
def eval_mode(*modules: nn.Module) -> Iterator[None]:
    """Put ``modules`` (and all their submodules) in eval mode; restore each submodule's mode on exit.

    Restores per submodule, so a model whose BatchNorm was frozen in eval mode while the
    rest trains comes back exactly as it was (``model.train()`` would not). Gradients are
    untouched: combine with ``torch.no_grad()`` where needed.

    Args:
        modules: the modules to switch (``None``-free; repeats and shared submodules are fine).

    Example:
        >>> net = nn.Sequential(nn.Linear(2, 2), nn.Dropout())
        >>> with eval_mode(net):
        ...     net.training
        False
        >>> net.training
        True
    """
    was = {id(m): (m, m.training) for module in modules for m in module.modules()}
    for m, _ in was.values():
        m.training = False
    try:
        yield
    finally:
        for m, flag in was.values():
            m.training = flag
