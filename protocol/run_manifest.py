"""The run manifest: one signed, content-addressed record that defines a training run.

It says what every role of the run must agree on: the model, the corpus (the demo corpus, the shards vetted
for the run, or an explicit list of shard ids) and the hash of the held-out split, the batch sizes, the
schedule, the mode and its DiLoCo settings, the receipt spot-check probability, the reward policy and,
optionally, the chain and ledger. A joining peer fetches it instead of being told every flag by hand.

    manifest = RunManifest.model_validate({...})          # strict: bounded values, no unknown fields
    signed = sign_manifest(manifest, private_key)         # the creator's Ethereum key
    text = signed.to_json()                               # the file and the DHT value
    signed = parse_signed_manifest(text)                  # checks the hash and the signature, or raises

Rules every role applies the same way:

* the content id is the SHA-256 of the manifest's canonical JSON (sorted keys, no spaces, ASCII, floats as
  Python's shortest round-trip repr), recomputed from the parsed values, never taken from the sender;
* the creator signs the text ``hivenet-run-manifest:<content id>`` (EIP-191 ``personal_sign``, so any
  Ethereum wallet can sign it); the signature must recover to the ``creator`` address of the envelope;
* the run id is a field of the manifest: a manifest fetched for run R is refused unless it says R.

Everything arrives from files or other peers, so :func:`parse_signed_manifest` bounds the size, parses
strictly and raises :class:`RunManifestError` with the reason and what to do.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Literal

from eth_account import Account
from eth_account.messages import encode_defunct
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from protocol.errors import HivenetError

FORMAT = "hivenet-run-manifest"
MANIFEST_VERSION = 1
MAX_MANIFEST_BYTES = 512 << 10  # a signed manifest listing the most shard ids is ~280 KB; refuse more unparsed
MAX_SHARD_IDS = 4096  # explicit corpus lists; a run on more shards names them by "vetted"
RUN_ID_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"  # the same run ids the shard store's run index accepts
_HEX64 = r"^[0-9a-f]{64}$"
_ADDRESS = r"^0x[0-9a-f]{40}$"  # lower case: one spelling per address, so one content id per manifest


class RunManifestError(HivenetError, ValueError):
    """A run manifest is malformed, does not hash to its content id, or is not signed by its creator."""


_STRICT = ConfigDict(strict=True, extra="forbid", frozen=True, allow_inf_nan=False)


class ModelSpec(BaseModel):
    """The model every peer and validator of the run builds (node.train.model.GPTConfig)."""

    model_config = _STRICT
    block_size: int = Field(ge=1, le=1 << 16)  # context length in bytes
    n_layer: int = Field(ge=1, le=1024)
    n_head: int = Field(ge=1, le=1024)
    n_embd: int = Field(ge=1, le=1 << 16)

    @model_validator(mode="after")
    def _heads_divide_width(self) -> ModelSpec:
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd {self.n_embd} is not divisible by n_head {self.n_head}")
        return self


class CorpusSpec(BaseModel):
    """What the run trains on, and the held-out split it evaluates on."""

    model_config = _STRICT
    # demo: the built-in corpus; vetted: every shard that passed vetting for the run; shards: exactly these
    source: Literal["demo", "vetted", "shards"]
    shard_ids: tuple[str, ...] = Field(default=(), max_length=MAX_SHARD_IDS)
    held_out_sha256: str = Field(pattern=_HEX64)  # SHA-256 of the held-out split's bytes

    @model_validator(mode="after")
    def _ids_match_source(self) -> CorpusSpec:
        if self.source == "shards" and not self.shard_ids:
            raise ValueError("a corpus of explicit shards names at least one shard id")
        if self.source != "shards" and self.shard_ids:
            raise ValueError(f"a {self.source!r} corpus names no shard ids (use source 'shards')")
        if any(not re.match(_HEX64, s) for s in self.shard_ids):
            raise ValueError("shard ids are 64 lower-case hex digits")
        if len(set(self.shard_ids)) != len(self.shard_ids) or list(self.shard_ids) != sorted(self.shard_ids):
            raise ValueError("shard ids are listed once each, in sorted order")
        return self


class ScheduleSpec(BaseModel):
    model_config = _STRICT
    max_epochs: int = Field(ge=0, le=1 << 20)  # collaborative epochs of the run
    lr: float = Field(gt=0, le=10)  # peak learning rate (DiLoCo's inner lr)
    warmup_epochs: int = Field(ge=0, le=1 << 20)  # epochs of linear warm-up


class DilocoSpec(BaseModel):
    """DiLoCo settings (node.train.config.DilocoConfig); present exactly when the mode is diloco."""

    model_config = _STRICT
    inner_steps: int = Field(ge=1, le=1 << 20)
    inner_warmup_steps: int = Field(ge=0, le=1 << 20)
    outer_lr: float = Field(ge=0, le=10)
    outer_momentum: float = Field(ge=0, lt=1)
    overlap: bool
    compression: Literal["none", "float16", "uint8"]
    error_feedback: bool


class RewardSpec(BaseModel):
    """The reward policy (protocol.scoring) the validators settle the run's epochs with."""

    model_config = _STRICT
    policy: Literal["proportional"]
    compute_bps: int = Field(ge=0, le=10_000)  # share of each epoch's pot for compute, the rest for data


class ChainSpec(BaseModel):
    model_config = _STRICT
    chain_id: int = Field(ge=1, le=(1 << 63) - 1)
    ledger: str = Field(pattern=_ADDRESS)  # the ContributionLedger contract of the run


class RunManifest(BaseModel):
    """The settings of one run (see the module docstring); build it with ``model_validate``."""

    model_config = _STRICT
    version: int = Field(ge=MANIFEST_VERSION, le=MANIFEST_VERSION)
    run_id: str = Field(pattern=RUN_ID_PATTERN)
    model: ModelSpec
    corpus: CorpusSpec
    batch_size: int = Field(ge=1, le=1 << 20)  # samples per local step
    target_batch_size: int = Field(ge=1, le=1 << 30)  # samples the swarm accumulates per collaborative epoch
    schedule: ScheduleSpec
    mode: Literal["sync", "diloco"]
    diloco: DilocoSpec | None = None
    receipt_probability: float = Field(ge=0, le=1)  # share of receipts a validator recomputes
    reward: RewardSpec
    chain: ChainSpec | None = None  # None: the run names no chain (a local or embedded one)

    @model_validator(mode="after")
    def _diloco_with_its_mode(self) -> RunManifest:
        if (self.mode == "diloco") != (self.diloco is not None):
            raise ValueError("diloco settings are given exactly when the mode is diloco")
        return self

    def canonical_bytes(self) -> bytes:
        """The bytes the content id hashes: sorted keys, no whitespace, ASCII only."""
        return canonical_json(self.model_dump(mode="json"))

    def content_id(self) -> str:
        """Hex SHA-256 of :meth:`canonical_bytes`."""
        return hashlib.sha256(self.canonical_bytes()).hexdigest()


def canonical_json(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode()


def signing_message(content_id: str) -> str:
    """The text the creator signs; the prefix keeps the signature from meaning anything else."""
    return f"{FORMAT}:{content_id}"


@dataclass(frozen=True)
class SignedRunManifest:
    """A manifest with its content id, its creator's address and the creator's signature (65 bytes)."""

    manifest: RunManifest
    content_id: str
    creator: str  # lower-case 0x address
    signature: bytes

    def to_dict(self) -> dict[str, object]:
        return {"format": FORMAT, "manifest": self.manifest.model_dump(mode="json"), "content_id": self.content_id,
                "creator": self.creator, "signature": "0x" + self.signature.hex()}

    def to_json(self) -> bytes:
        """The envelope as canonical JSON: what a manifest file holds and what the DHT stores."""
        return canonical_json(self.to_dict())


def sign_manifest(manifest: RunManifest, private_key: bytes) -> SignedRunManifest:
    """``manifest`` signed by the Ethereum account of ``private_key`` (32 bytes)."""
    cid = manifest.content_id()
    account = Account.from_key(private_key)
    signed = account.sign_message(encode_defunct(text=signing_message(cid)))
    return SignedRunManifest(manifest, cid, str(account.address).lower(), bytes(signed.signature))


def recover_creator(content_id: str, signature: bytes) -> str | None:
    """The lower-case address that signed ``content_id``, or None for a malformed signature."""
    try:
        return str(Account.recover_message(encode_defunct(text=signing_message(content_id)), signature=signature)).lower()
    except Exception:  # eth-keys raises several types for bad signatures; any of them means "not signed"
        return None


class _Envelope(BaseModel):
    model_config = _STRICT
    format: Literal["hivenet-run-manifest"]
    manifest: RunManifest
    content_id: str = Field(pattern=_HEX64)
    creator: str = Field(pattern=_ADDRESS)
    signature: str = Field(pattern=r"^0x[0-9a-f]{130}$")


def _first_problem(e: ValidationError) -> str:
    err = e.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "the manifest"
    return f"{where}: {err['msg']}"


def parse_signed_manifest(data: bytes | str, source: str = "manifest") -> SignedRunManifest:
    """A verified manifest from its envelope's JSON, or RunManifestError naming ``source`` and the problem.

    Checks, in order: size, JSON, the envelope's and the manifest's schema (strict, bounded), that the
    manifest hashes to the content id the envelope names, and that the signature recovers to its creator.
    """
    raw = data.encode() if isinstance(data, str) else data
    if len(raw) > MAX_MANIFEST_BYTES:
        raise RunManifestError(f"{source} is {len(raw)} bytes, over the {MAX_MANIFEST_BYTES}-byte limit of a run manifest")
    try:
        envelope = _Envelope.model_validate_json(raw)
    except ValidationError as e:
        raise RunManifestError(f"{source} is not a valid signed run manifest ({_first_problem(e)}); "
                               "ask its creator for a valid one or create one with `hivenet run create`") from None
    manifest = envelope.manifest
    cid = manifest.content_id()
    if cid != envelope.content_id:
        raise RunManifestError(f"{source}: the manifest hashes to {cid}, not to the content id {envelope.content_id} "
                               "it names (modified after signing); fetch it again from its creator")
    signature = bytes.fromhex(envelope.signature[2:])
    signer = recover_creator(cid, signature)
    if signer != envelope.creator:
        raise RunManifestError(f"{source}: the signature is not {envelope.creator}'s (it recovers to {signer}); "
                               "the manifest was forged or altered: fetch it again from its creator")
    return SignedRunManifest(manifest, cid, envelope.creator, signature)
