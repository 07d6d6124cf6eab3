"""The vetting report: each check's figures, verdict and reasons, hashed canonically and signed.

The report is deterministic: the same shard, run state and configuration give
byte-identical canonical JSON on every validator (figures are rounded, keys
sorted, no timestamps), so validators can compare report hashes, and the hash
is what goes on chain (``protocol.shards.ShardAttestation``). The signature is
Ed25519 over that hash.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from protocol.errors import ShardError
from protocol.shards import ShardAttestation
from protocol.types import ShardId

REPORT_VERSION = 1


class Status(str, Enum):
    PASS = "pass"
    REVIEW = "review"  # not trained on until a person looks (the poisoning probe's outcome)
    FAIL = "fail"
    SKIPPED = "skipped"  # not run: an earlier check failed, or its input (eval split, reference) is absent


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: Status
    figures: Mapping[str, float]
    reasons: tuple[str, ...] = ()
    excluded: dict[int, str] | None = None  # record index -> why this check removed it

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status.value,
            "figures": {k: round(float(v), 6) for k, v in sorted(self.figures.items())},
            "reasons": list(self.reasons),
            "excluded": len(self.excluded or {}),
        }


@dataclass(frozen=True)
class VettingReport:
    shard_id: ShardId
    run_id: str
    checks: tuple[CheckResult, ...]
    excluded: dict[int, str]  # every excluded record, with the first check's reason
    n_records: int
    verdict: Status  # PASS, REVIEW or FAIL
    score: float  # 0..1: usable fraction times check scores (pass 1, review 0.5, fail 0)
    prior_shards: tuple[str, ...]  # shards of the run it was deduplicated against, in order
    config_hash: str  # SHA-256 of the vetting configuration
    validator: str = ""  # hex Ed25519 public key of the signer
    signature: str = ""  # hex Ed25519 signature over ``digest()``

    @property
    def n_usable(self) -> int:
        return self.n_records - len(self.excluded)

    @property
    def passed(self) -> bool:
        return self.verdict is Status.PASS

    def body(self) -> dict[str, Any]:
        return {
            "version": REPORT_VERSION,
            "shard_id": self.shard_id,
            "run_id": self.run_id,
            "checks": [c.to_json() for c in self.checks],
            "excluded": [[i, why] for i, why in sorted(self.excluded.items())],
            "n_records": self.n_records,
            "n_usable": self.n_usable,
            "verdict": self.verdict.value,
            "score": round(self.score, 6),
            "prior_shards": list(self.prior_shards),
            "config_hash": self.config_hash,
        }

    def canonical(self) -> bytes:
        return json.dumps(self.body(), sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()

    def digest(self) -> bytes:
        return hashlib.sha256(self.canonical()).digest()

    def signed(self, key: Ed25519PrivateKey) -> VettingReport:
        from dataclasses import replace

        public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()
        return replace(self, validator=public, signature=key.sign(self.digest()).hex())

    def signature_valid(self) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(bytes.fromhex(self.validator)).verify(
                bytes.fromhex(self.signature), self.digest()
            )
        except (ValueError, InvalidSignature):
            return False
        return True

    def attestation(self) -> ShardAttestation:
        return ShardAttestation(
            shard_id=self.shard_id,
            passed=self.passed,
            score=int(round(self.score * 10_000)),
            report_hash=self.digest(),
            n_records=self.n_usable if self.passed else 0,
        )

    def to_json(self) -> dict[str, Any]:
        return {**self.body(), "validator": self.validator, "signature": self.signature, "report_hash": self.digest().hex()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> VettingReport:
        """Rebuild a stored report; raises ``ShardError`` if it was altered (hash or signature mismatch)."""
        try:
            checks = tuple(
                CheckResult(c["name"], Status(c["status"]), dict(c["figures"]), tuple(c["reasons"]), {i: "" for i in range(c["excluded"])})
                for c in data["checks"]
            )
            report = cls(
                shard_id=ShardId(data["shard_id"]),
                run_id=data["run_id"],
                checks=checks,
                excluded={int(i): str(why) for i, why in data["excluded"]},
                n_records=int(data["n_records"]),
                verdict=Status(data["verdict"]),
                score=float(data["score"]),
                prior_shards=tuple(data["prior_shards"]),
                config_hash=data["config_hash"],
                validator=data.get("validator", ""),
                signature=data.get("signature", ""),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise ShardError(f"vetting report is malformed: {e}") from None
        if data.get("version") != REPORT_VERSION:
            raise ShardError(f"vetting report version {data.get('version')!r} is not {REPORT_VERSION}")
        if data.get("report_hash") != report.digest().hex():
            raise ShardError("vetting report does not match its hash: it was altered")
        if report.signature and not report.signature_valid():
            raise ShardError("vetting report signature is invalid")
        return report
