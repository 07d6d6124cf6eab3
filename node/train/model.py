"""A small byte-level GPT in the style of nanoGPT (Karpathy), sized for CPUs.

Bytes are tokens (vocabulary 256), so no tokenizer is downloaded and the loss
reads directly as nats per byte; ln(256) ~ 5.55 is a model that knows nothing.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F

VOCAB_SIZE = 256  # byte-level: every byte value is a token
# Bump when the model computes something else from the same parameters: peers of different revisions never
# average together (node.swarm.models). 2: QK-norm.
MODEL_REVISION = 2


@dataclass(frozen=True)
class GPTConfig:
    block_size: int = 128  # context length in bytes; also the length of one training sample
    n_layer: int = 4  # transformer blocks; 4 keeps a step well under a second on one CPU thread
    n_head: int = 4  # attention heads per block; n_embd must divide by it
    n_embd: int = 256  # width; with 4 layers this gives ~3.2M parameters
    dropout: float = 0.0  # off by default: recomputing a peer's step must be exact (receipts)

    def __post_init__(self) -> None:
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd={self.n_embd} must be divisible by n_head={self.n_head}")
        if min(self.block_size, self.n_layer, self.n_head, self.n_embd) < 1:
            raise ValueError("block_size, n_layer, n_head and n_embd must all be positive")


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention with QK-norm: queries and keys are layer-normed per head.

    Without it the attention logits of the first block can grow in one step at the node's learning rate
    (one AdamW step per collaborative epoch, lr 4e-3) and the held-out loss spikes: 3.24 -> 3.90 nats/byte
    in one step of an in-process run, undone by reverting that block's attention weights alone, and up to
    3.5 -> 6.9 in swarm runs. With QK-norm (Dehghani et al. 2023, "Scaling Vision Transformers to 22 Billion
    Parameters"; Wortsman et al. 2023, "Small-scale proxies for large-scale Transformer training
    instabilities") the logits stay bounded: the 8 in-process runs of 12 steps of which 2 spiked without it
    had no rise at all (in 16 other runs of 10 steps one rose by 0.3). It does not make a 4e-3 step safe: in swarm runs whose steps average 3 peers' gradients a
    rise of 0.2-0.4 at one epoch remained, again undone by reverting the first block's ``qkv``.
    """

    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.n_head = cfg.n_head
        self.qkv = nn.Linear(cfg.n_embd, 3 * cfg.n_embd)
        self.q_norm = nn.LayerNorm(cfg.n_embd // cfg.n_head)
        self.k_norm = nn.LayerNorm(cfg.n_embd // cfg.n_head)
        self.proj = nn.Linear(cfg.n_embd, cfg.n_embd)
        self.dropout = cfg.dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = self.qkv(x).split(c, dim=2)
        q, k, v = (z.view(b, t, self.n_head, c // self.n_head).transpose(1, 2) for z in (q, k, v))
        q, k = self.q_norm(q), self.k_norm(k)
        y = F.scaled_dot_product_attention(
            q, k, v, is_causal=True, dropout_p=self.dropout if self.training else 0.0
        )
        return self.proj(y.transpose(1, 2).contiguous().view(b, t, c))


class Block(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.n_embd)
        self.attn = CausalSelfAttention(cfg)
        self.ln2 = nn.LayerNorm(cfg.n_embd)
        self.mlp = nn.Sequential(
            nn.Linear(cfg.n_embd, 4 * cfg.n_embd),
            nn.GELU(),
            nn.Linear(4 * cfg.n_embd, cfg.n_embd),
            nn.Dropout(cfg.dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class GPT(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.tok_emb = nn.Embedding(VOCAB_SIZE, cfg.n_embd)
        self.pos_emb = nn.Embedding(cfg.block_size, cfg.n_embd)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.n_embd)
        self.head = nn.Linear(cfg.n_embd, VOCAB_SIZE, bias=False)
        self.head.weight = self.tok_emb.weight  # weight tying, as in GPT-2
        self.apply(self._init_weights)
        for name, p in self.named_parameters():
            if name.endswith("proj.weight") or name.endswith("mlp.2.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * cfg.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits for byte ids ``idx`` (B, T); with ``targets``, also the mean cross-entropy (nats/byte)."""
        t = idx.shape[1]
        if t > self.cfg.block_size:
            raise ValueError(f"sequence of {t} bytes exceeds block_size={self.cfg.block_size}")
        pos = torch.arange(t, device=idx.device)
        x = self.tok_emb(idx) + self.pos_emb(pos)
        for block in self.blocks:
            x = block(x)
        logits = self.head(self.ln_f(x))
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.view(-1, VOCAB_SIZE), targets.reshape(-1))
        return logits, loss


def run_seed(run_id: str) -> int:
    """Initial-weights seed shared by every peer of a run."""
    return int.from_bytes(hashlib.sha256(b"hivenet/init/" + run_id.encode()).digest()[:8], "big") >> 1


def build_model(cfg: GPTConfig, seed: int) -> GPT:
    """A GPT whose initial weights depend only on ``seed``: peers of one run start identical."""
    gen_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        return GPT(cfg)
    finally:
        torch.random.set_rng_state(gen_state)


def model_fingerprint(cfg: GPTConfig, model: nn.Module) -> str:
    """12 hex digits over the model's revision, its config, and every parameter's name and shape: peers of a run
    average together only when theirs are equal (node.swarm.models)."""
    h = hashlib.sha256(f"hivenet-model/{MODEL_REVISION}/{sorted(asdict(cfg).items())!r}/".encode())
    for name, p in model.named_parameters():
        h.update(f"{name}:{tuple(p.shape)};".encode())
    return h.hexdigest()[:12]


def describe_model(cfg: GPTConfig) -> str:
    return (f"revision {MODEL_REVISION}, n_layer={cfg.n_layer}, n_head={cfg.n_head}, n_embd={cfg.n_embd}, "
            f"block_size={cfg.block_size}")
