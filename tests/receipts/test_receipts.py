"""Receipts: EIP-712 digests, wire round trip, replay rejections, spot-check odds."""

from __future__ import annotations

import math
import random
from dataclasses import replace

from eth_account import Account
from eth_account.messages import encode_typed_data
from hypothesis import given, settings
from hypothesis import strategies as st

from node.work.wire import parse_value, recover_signer, sign_receipt, to_wire
from protocol.receipts import (
    SKETCH_DIM, CorpusLayout, EpochRules, Receipt, Reject, batches_commitment, duplicates, is_selected, shard_samples,
    sketch_error, static_check,
)
from protocol.types import Epoch, PeerId, RunId

KEY = Account.from_key(b"\x07" * 32)
OTHER = Account.from_key(b"\x08" * 32)
LAYOUT = CorpusLayout((("aa" * 32, 0), ("bb" * 32, 5000)))
N = 10_000
PEERS = ["QmPeerA" + "1" * 39, "QmPeerB" + "2" * 39]


def receipt(run: str = "r", epoch: int = 3, peer: str = PEERS[0], steps: int = 4, batch: int = 8, account=KEY) -> Receipt:
    run_, ep, p = RunId(run), Epoch(epoch), PeerId(peer)
    return Receipt(run_, ep, p, account.address, steps, batch, steps * batch, N, batches_commitment(run_, ep, p, steps, batch, N),
                   shard_samples(LAYOUT, run_, ep, p, steps, batch, N), b"\x01" * 32,
                   tuple(float(i % 7) - 3 for i in range(SKETCH_DIM)))


RULES = EpochRules(RunId("r"), Epoch(3), N, max_samples=256, layout=LAYOUT)


def verdict(r: Receipt, rules: EpochRules = RULES, key=KEY) -> Reject | None:
    signed = sign_receipt(key, r) if key.address.lower() == r.account else None
    if signed is None:
        signed = sign_receipt(key, replace(r, account=key.address))
        signed = type(signed)(r, signed.signature)  # a signature by someone else than the named account
    return static_check(signed, recover_signer(signed), rules)


@settings(max_examples=40, deadline=None)
@given(st.text(min_size=1, max_size=20), st.integers(0, 2**40), st.integers(1, 50), st.integers(1, 64))
def test_digest_is_eth_accounts_eip712_digest(run, epoch, steps, batch) -> None:
    r = Receipt(RunId(run), Epoch(epoch), PeerId(PEERS[0]), KEY.address, steps, batch, steps * batch, N, b"\x02" * 32, (),
                b"\x03" * 32, (0.5,) * SKETCH_DIM)
    assert KEY.sign_message(encode_typed_data(full_message=r.typed_data())).signature == sign_receipt(KEY, r).signature


def test_wire_round_trip_keeps_the_digest_and_signer() -> None:
    signed = sign_receipt(KEY, receipt())
    back = parse_value(to_wire(signed))
    assert back is not None and back.receipt.digest() == signed.receipt.digest()
    assert recover_signer(back) == KEY.address.lower()


def test_wire_rejects_bad_schema_and_foreign_signatures() -> None:
    wire = to_wire(sign_receipt(KEY, receipt()))
    assert parse_value({**wire, "steps": 4.0}) is None  # strict: no coercion
    assert parse_value({**wire, "extra": 1}) is None
    assert parse_value({**wire, "sketch": b"\x00" * 12}) is None
    assert parse_value({**wire, "samples": 9999}) is None  # signature no longer matches
    assert parse_value({**wire, "account": OTHER.address.lower()}) is None


def test_an_honest_receipt_passes_the_static_checks() -> None:
    assert verdict(receipt()) is None


def test_replays_to_another_run_epoch_or_peer_are_rejected() -> None:
    """Acceptance 2: a receipt moved to another run or epoch, or claimed by another peer, earns nothing."""
    signed = sign_receipt(KEY, receipt())
    assert static_check(signed, recover_signer(signed), replace(RULES, run_id=RunId("other"))) == Reject.WRONG_RUN
    assert static_check(signed, recover_signer(signed), replace(RULES, epoch=Epoch(4))) == Reject.WRONG_EPOCH
    # another peer re-signs the content under its own id and account: the batches are not its own
    stolen = replace(signed.receipt, peer_id=PeerId(PEERS[1]), account=OTHER.address)
    assert verdict(stolen, key=OTHER) == Reject.BATCHES_MISMATCH
    # ... or edits the account without the key: the signature no longer matches
    assert verdict(replace(signed.receipt, account=OTHER.address), key=KEY) == Reject.BAD_SIGNATURE
    # ... or publishes the very same receipt again: only one copy counts
    assert duplicates([signed, signed]) == {1}


def test_inconsistent_claims_are_rejected_statically() -> None:
    r = receipt()
    assert verdict(replace(r, samples=r.samples + 1)) == Reject.SAMPLES_MISMATCH
    assert verdict(receipt(steps=40, batch=8)) == Reject.OVER_CAP
    assert verdict(replace(r, n_samples=N + 1)) == Reject.DATASET_MISMATCH
    assert verdict(replace(r, steps=5, samples=40)) == Reject.BATCHES_MISMATCH
    assert verdict(replace(r, shard_samples=(("aa" * 32, r.samples),))) == Reject.SHARDS_MISMATCH


def test_copied_sketch_under_another_identity_is_a_duplicate() -> None:
    a = sign_receipt(KEY, receipt())
    b = sign_receipt(OTHER, replace(receipt(peer=PEERS[1], account=OTHER), sketch=a.receipt.sketch))
    assert len(duplicates([a, b])) == 1


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 20), st.integers(0, 10**6))
def test_shard_counts_sum_to_the_samples(steps, seed) -> None:
    counts = shard_samples(LAYOUT, RunId("r"), Epoch(seed), PeerId(PEERS[seed % 2]), steps, 8, N)
    assert sum(c for _, c in counts) == steps * 8 and [s for s, _ in counts] == sorted(s for s, _ in counts)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6), min_size=SKETCH_DIM, max_size=SKETCH_DIM))
def test_sketch_error_is_zero_on_itself_and_symmetric_in_scale(values) -> None:
    assert sketch_error(values, values) == 0.0 or not any(values)
    assert sketch_error(values, values[:-1]) == math.inf


def test_selection_with_p_one_and_zero() -> None:
    digests = [random.Random(i).randbytes(32) for i in range(200)]
    assert all(is_selected(b"seed", d, 1.0) for d in digests)
    assert not any(is_selected(b"seed", d, 0.0) for d in digests)


def test_detection_frequency_matches_one_minus_one_minus_p_to_the_k() -> None:
    """Acceptance 1 (p < 1): a peer cheating in k epochs is caught at least once with odds 1-(1-p)^k.

    Each trial is a fresh run (a fresh chain of public seeds) in which the cheater publishes
    k receipts; over 4000 trials the observed frequency lies within 4.5 standard errors of
    1-(1-p)^k (a two-sided band that a correct rule leaves with probability < 1e-5).
    """
    trials = 4000
    for p, k in ((0.1, 5), (0.25, 3), (0.5, 2), (0.05, 20)):
        caught = 0
        for t in range(trials):
            rng = random.Random(t * 7919 + k)
            seeds = [rng.randbytes(32) for _ in range(k)]  # each epoch's seed: the previous root
            digests = [rng.randbytes(32) for _ in range(k)]  # the cheater's receipts
            caught += any(is_selected(s, d, p) for s, d in zip(seeds, digests))
        expected = 1 - (1 - p) ** k
        stderr = math.sqrt(expected * (1 - expected) / trials)
        assert abs(caught / trials - expected) <= 4.5 * stderr, (p, k, caught / trials, expected)
