"""The 8-bit codec that replaces hivemind's broken UNIFORM_8BIT one, against a reference quantizer in numpy."""

import numpy as np
import pytest
import torch
from hivemind.compression import deserialize_torch_tensor, serialize_torch_tensor
from hivemind.compression.base import CompressionInfo
from hivemind.compression.quantization import Uniform8BitQuantization
from hivemind.proto import runtime_pb2

from node.swarm.codecs import BLOCK, COMPRESSIONS, compression, roundtrip
from protocol.errors import ConfigError


def reference_quantize(values: np.ndarray, block: int) -> np.ndarray:
    """Per block of `block` values: scale = max |x| / 127, code = round-half-even(x / scale), value = code * scale."""
    out = np.empty_like(values, dtype=np.float32)
    for start in range(0, len(values), block):
        chunk = values[start:start + block].astype(np.float32)
        scale = np.float32(np.abs(chunk).max() / np.float32(127.0))
        codes = np.clip(np.round(chunk / scale), -127, 127) if scale > 0 else np.zeros_like(chunk)
        out[start:start + block] = codes.astype(np.float32) * scale
    return out


@pytest.mark.parametrize("n", [1, 1000, BLOCK, 3 * BLOCK + 17])
def test_uint8_codec_equals_the_reference_quantizer(n):
    gen = torch.Generator().manual_seed(n)
    x = torch.randn(n, generator=gen) * torch.logspace(-3, 1, n)  # magnitudes vary along the vector
    got = roundtrip(x, COMPRESSIONS["uint8"])
    want = torch.from_numpy(reference_quantize(x.numpy(), BLOCK))
    assert got.dtype == torch.float32 and got.shape == x.shape
    assert torch.allclose(got, want, rtol=0, atol=1e-7 * float(x.abs().max()))
    # the error bound of the scheme: half a step of the block's scale
    for start in range(0, n, BLOCK):
        block = x[start:start + BLOCK]
        assert float((got[start:start + BLOCK] - block).abs().max()) <= float(block.abs().max()) / 254 * 1.0001


def test_uint8_codec_is_about_four_times_smaller_and_keeps_shape_and_zeros():
    x = torch.randn(64, 1000)
    message = COMPRESSIONS["uint8"].compress(x, CompressionInfo.from_tensor(x))
    assert len(message.buffer) == x.numel() + 4 * (-(-x.numel() // BLOCK))
    assert x.numel() * 4 / len(message.buffer) > 3.9
    assert message.compression == runtime_pb2.UNIFORM_8BIT
    decoded = deserialize_torch_tensor(message)  # through hivemind's registry: our codec decodes UNIFORM_8BIT
    assert decoded.shape == x.shape
    assert torch.equal(roundtrip(torch.zeros(5000), COMPRESSIONS["uint8"]), torch.zeros(5000))


def test_truncated_message_is_refused_by_name():
    x = torch.randn(5000)
    message = COMPRESSIONS["uint8"].compress(x, CompressionInfo.from_tensor(x))
    message.buffer = message.buffer[:-10]
    with pytest.raises(ValueError, match="needs .* bytes"):
        deserialize_torch_tensor(message)


def test_hivemind_uint8_codec_is_broken_here_which_is_why_ours_replaces_it():
    x = torch.randn(5000)
    serialized = Uniform8BitQuantization().compress(x, CompressionInfo.from_tensor(x))
    with pytest.raises(TypeError):
        Uniform8BitQuantization().extract(serialized)


def test_float16_and_none_round_trip_and_unknown_names_are_config_errors():
    x = torch.randn(1000)
    assert torch.equal(roundtrip(x, compression("none")), x)
    assert torch.allclose(roundtrip(x, compression("float16")), x, atol=1e-2)
    assert len(serialize_torch_tensor(x, runtime_pb2.FLOAT16).buffer) == 2000
    with pytest.raises(ConfigError, match="unknown compression 'int4'"):
        compression("int4")
