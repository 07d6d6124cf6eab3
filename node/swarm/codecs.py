"""What averaging puts on the wire: the compression codecs a config may name, and what the wire does to a tensor.

``COMPRESSIONS`` names the choices (``none``, ``float16``, ``uint8``); ``uint8`` is hivenet's blockwise 8-bit
codec (``node.swarm.hivemind_ext.blockwise8bit``), which importing this module installs in place of hivemind's
broken one, so every process that imports hivenet decodes ``UNIFORM_8BIT`` the same way.

    .venv/bin/python -m pytest tests/diloco/test_codecs.py -q
"""

from __future__ import annotations

import torch
from hivemind.compression import deserialize_torch_tensor
from hivemind.compression.base import CompressionBase, CompressionInfo, NoCompression
from hivemind.compression.floating import Float16Compression

from node.swarm.hivemind_ext.blockwise8bit import BLOCK, UINT8, dequantize_blocks, install, quantize_blocks
from protocol.errors import ConfigError

__all__ = ["BLOCK", "COMPRESSIONS", "compression", "dequantize_blocks", "quantize_blocks", "roundtrip"]

COMPRESSIONS: dict[str, CompressionBase] = {
    "none": NoCompression(),
    "float16": Float16Compression(),
    "uint8": UINT8,
}


def compression(name: str) -> CompressionBase:
    """The codec for a config name; an unknown name is a ConfigError listing the choices."""
    try:
        return COMPRESSIONS[name]
    except KeyError:
        raise ConfigError(f"unknown compression {name!r}; choose one of {', '.join(COMPRESSIONS)}") from None


def roundtrip(tensor: torch.Tensor, codec: CompressionBase) -> torch.Tensor:
    """``tensor`` as a receiver decodes it after ``codec`` (what the wire does to it)."""
    return deserialize_torch_tensor(codec.compress(tensor, CompressionInfo.from_tensor(tensor)))


install()
