"""Small shared helpers (lowest layer): registries, atomic file writes, seeding."""

from mmcoop.utils.io import atomic_write_bytes, atomic_write_text, atomic_torch_save
from mmcoop.utils.registry import Registry
from mmcoop.utils.seeding import seed_everything

__all__ = ["Registry", "atomic_write_bytes", "atomic_write_text", "atomic_torch_save", "seed_everything"]
