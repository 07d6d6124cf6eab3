"""The run manifest's rules: canonical content id, creator signature, strict bounded parsing.

    .venv/bin/python -m pytest tests/run/test_run_manifest.py -q
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.run_manifest import (
    MAX_MANIFEST_BYTES, RunManifest, RunManifestError, parse_signed_manifest, sign_manifest,
)

KEY = bytes(range(1, 33))
OTHER_KEY = bytes(range(2, 34))
HELD_OUT = "c" * 64


def settings_of(**changes: object) -> dict[str, object]:
    base: dict[str, object] = {
        "version": 1, "run_id": "run-1",
        "model": {"block_size": 64, "n_layer": 2, "n_head": 2, "n_embd": 64},
        "corpus": {"source": "demo", "shard_ids": [], "held_out_sha256": HELD_OUT},
        "batch_size": 8, "target_batch_size": 64,
        "schedule": {"max_epochs": 10, "lr": 0.002, "warmup_epochs": 2},
        "mode": "sync", "diloco": None, "receipt_probability": 0.5,
        "reward": {"policy": "proportional", "compute_bps": 7000}, "chain": None,
    }
    return {**base, **changes}


def manifest_of(**changes: object) -> RunManifest:
    return RunManifest.model_validate_json(json.dumps(settings_of(**changes)))


manifests = st.builds(
    lambda run_id, layers, heads, width_mult, batch, lr, epochs, p, bps, diloco, shards, chain: manifest_of(
        run_id=run_id, model={"block_size": 32, "n_layer": layers, "n_head": heads, "n_embd": heads * width_mult},
        batch_size=batch, schedule={"max_epochs": epochs, "lr": lr, "warmup_epochs": 0},
        receipt_probability=p, reward={"policy": "proportional", "compute_bps": bps},
        mode="diloco" if diloco else "sync",
        diloco={"inner_steps": 5, "inner_warmup_steps": 1, "outer_lr": 0.7, "outer_momentum": 0.9, "overlap": True,
                "compression": "float16", "error_feedback": False} if diloco else None,
        corpus={"source": "shards" if shards else "vetted", "shard_ids": sorted(shards), "held_out_sha256": HELD_OUT},
        chain={"chain_id": chain, "ledger": "0x" + "ab" * 20} if chain else None,
    ),
    st.from_regex(r"[A-Za-z0-9_.-]{1,64}", fullmatch=True), st.integers(1, 8), st.integers(1, 8), st.integers(1, 16),
    st.integers(1, 1024), st.floats(1e-6, 1.0), st.integers(0, 10_000), st.floats(0, 1), st.integers(0, 10_000),
    st.booleans(), st.sets(st.text("0123456789abcdef", min_size=64, max_size=64), max_size=5),
    st.one_of(st.none(), st.integers(1, 1 << 40)),
)


@settings(max_examples=40, deadline=None)
@given(manifests)
def test_a_signed_manifest_parses_back_to_itself_with_its_creator(manifest: RunManifest) -> None:
    signed = sign_manifest(manifest, KEY)
    parsed = parse_signed_manifest(signed.to_json())
    assert parsed == signed
    assert parsed.manifest == manifest and parsed.content_id == manifest.content_id()


@settings(max_examples=40, deadline=None)
@given(manifests, st.integers(1, 1000))
def test_changing_any_setting_after_signing_is_refused_as_a_hash_mismatch(manifest: RunManifest, bump: int) -> None:
    envelope = sign_manifest(manifest, KEY).to_dict()
    body = dict(envelope["manifest"])  # type: ignore[arg-type]
    body["batch_size"] = manifest.batch_size + bump
    forged = json.dumps({**envelope, "manifest": body})
    with pytest.raises(RunManifestError, match="hashes to .* not to the content id"):
        parse_signed_manifest(forged)


def test_the_content_id_ignores_key_order_and_whitespace_of_the_file() -> None:
    signed = sign_manifest(manifest_of(), KEY)
    reordered = json.dumps(dict(reversed(list(signed.to_dict().items()))), indent=3)
    assert parse_signed_manifest(reordered).content_id == signed.content_id


def test_a_matching_hash_signed_by_someone_else_than_the_named_creator_is_refused() -> None:
    mine, theirs = sign_manifest(manifest_of(), KEY), sign_manifest(manifest_of(), OTHER_KEY)
    forged = {**theirs.to_dict(), "creator": mine.creator}  # claims my authorship with their signature
    with pytest.raises(RunManifestError, match=f"the signature is not {mine.creator}'s .*recovers to {theirs.creator}"):
        parse_signed_manifest(json.dumps(forged))


def test_a_new_content_id_over_changed_settings_does_not_carry_the_old_signature() -> None:
    signed = sign_manifest(manifest_of(), KEY)
    changed = manifest_of(batch_size=9)
    forged = {**signed.to_dict(), "manifest": changed.model_dump(mode="json"), "content_id": changed.content_id()}
    with pytest.raises(RunManifestError, match="the signature is not"):
        parse_signed_manifest(json.dumps(forged))


@pytest.mark.parametrize("change, reason", [
    ({"extra": 1}, "extra"),
    ({"schedule": {"max_epochs": 10, "lr": float("nan"), "warmup_epochs": 2}}, "schedule.lr"),
    ({"batch_size": 0}, "batch_size"),
    ({"batch_size": "8"}, "batch_size"),
    ({"mode": "diloco"}, "diloco settings are given exactly when the mode is diloco"),
    ({"run_id": "a/b"}, "run_id"),
    ({"model": {"block_size": 64, "n_layer": 2, "n_head": 3, "n_embd": 64}}, "not divisible"),
    ({"corpus": {"source": "shards", "shard_ids": [], "held_out_sha256": HELD_OUT}}, "at least one shard id"),
    ({"corpus": {"source": "shards", "shard_ids": ["b" * 64, "a" * 64], "held_out_sha256": HELD_OUT}}, "sorted"),
    ({"corpus": {"source": "demo", "shard_ids": ["a" * 64], "held_out_sha256": HELD_OUT}}, "names no shard ids"),
    ({"version": 2}, "version"),
])
def test_out_of_bounds_or_unknown_settings_are_refused_naming_the_field(change: dict[str, object], reason: str) -> None:
    good = sign_manifest(manifest_of(), KEY).to_dict()
    text = json.dumps({**good, "manifest": {**good["manifest"], **change}})  # type: ignore[dict-item]
    with pytest.raises(RunManifestError, match=reason):
        parse_signed_manifest(text)


@pytest.mark.parametrize("text, reason", [
    (b"not json", "not a valid signed run manifest"),
    (b"[]", "not a valid signed run manifest"),
    (b" " * (MAX_MANIFEST_BYTES + 1), "over the"),
])
def test_what_is_not_a_manifest_envelope_is_refused_before_anything_else(text: bytes, reason: str) -> None:
    with pytest.raises(RunManifestError, match=reason):
        parse_signed_manifest(text)
