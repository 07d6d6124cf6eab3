"""Peers of one run with different models never average together, and say why (node.swarm.models).

Before: a peer started with --n-embd 128 in a run of 64-wide peers saw the swarm ahead of it and spent a minute
failing to load their state ("The size of tensor a (128) must match the size of tensor b (64)", 12 retries)
before it trained alone; it shared their group keys, so nothing kept it out of their rounds.
"""

import logging

import hivemind
import pytest
from hivemind.utils import get_dht_time

from node.records import StartRecord
from node.swarm import models
from node.testnet.network import Testnet
from node.train.model import GPTConfig, build_model, describe_model, model_fingerprint
from protocol.errors import PeersNotFound
from tests.integration.swarm_helpers import epoch_records, tiny_testnet


def _fingerprint(**cfg) -> str:  # type: ignore[no-untyped-def]
    config = GPTConfig(**cfg)
    return model_fingerprint(config, build_model(config, seed=1))


def test_the_fingerprint_depends_on_the_model_not_on_its_weights(monkeypatch):
    base = _fingerprint(n_layer=2, n_embd=64)
    assert base == _fingerprint(n_layer=2, n_embd=64)
    config = GPTConfig(n_layer=2, n_embd=64)
    assert model_fingerprint(config, build_model(config, seed=2)) == base  # other weights, same model
    others = {_fingerprint(n_layer=3, n_embd=64), _fingerprint(n_layer=2, n_embd=32), _fingerprint(n_layer=2, n_embd=64, n_head=2),
              _fingerprint(n_layer=2, n_embd=64, block_size=64)}
    assert len(others) == 4 and base not in others
    monkeypatch.setattr("node.train.model.MODEL_REVISION", 1)  # an older hivenet's model of the same shapes
    assert _fingerprint(n_layer=2, n_embd=64) != base
    assert len(base) == 12 and set(base) <= set("0123456789abcdef")


@pytest.mark.swarm
def test_peers_announce_their_models_and_see_the_others(caplog):
    a = hivemind.DHT(start=True, host_maddrs=["/ip4/127.0.0.1/tcp/0"])
    b = hivemind.DHT(start=True, host_maddrs=["/ip4/127.0.0.1/tcp/0"], initial_peers=a.get_visible_maddrs())
    c = hivemind.DHT(start=True, host_maddrs=["/ip4/127.0.0.1/tcp/0"], initial_peers=a.get_visible_maddrs())
    try:
        small, large = GPTConfig(n_layer=2, n_embd=64), GPTConfig(n_layer=2, n_embd=128)
        key_a = models.join(a, "run-x", "aaaaaaaaaaaa", describe_model(small))
        key_b = models.join(b, "run-x", "aaaaaaaaaaaa", describe_model(small))
        with caplog.at_level(logging.WARNING, logger="node.swarm.models"):
            key_c = models.join(c, "run-x", "cccccccccccc", describe_model(large))
        assert key_a == key_b == "run-x_maaaaaaaaaaaa" and key_c == "run-x_mcccccccccccc"
        # c is told, in one line, that 2 peers of the run train another model, which, and what to do
        warning = " ".join(r.getMessage() for r in caplog.records)
        assert "run 'run-x' also has 2 peer(s) with model aaaaaaaaaaaa (revision 2, n_layer=2, n_head=4, n_embd=64" in warning
        assert "this peer trains cccccccccccc" in warning and "--n-embd" in warning
        seen_by_a = models.other_models(a, "run-x", "aaaaaaaaaaaa")
        assert list(seen_by_a) == ["cccccccccccc"] and seen_by_a["cccccccccccc"][1] == [c.peer_id.to_base58()]
        assert models.other_models(a, "run-y", "aaaaaaaaaaaa") == {}  # another run's records are not this run's

        # A malformed record (another program's, a hostile peer's) is skipped, not a crash
        for value in ("junk", {"fingerprint": 7, "model": "x"}, {"model": "no fingerprint"}):
            assert b.store("run-x_models", subkey="QmJunk", value=value, expiration_time=get_dht_time() + 60)
            assert set(models.other_models(a, "run-x", "aaaaaaaaaaaa")) == {"cccccccccccc"}

        # A barrier counts the peers of this model only, and its timeout names the run's peers of other models
        assert len(models.wait_for_peers(a, "run-x", "aaaaaaaaaaaa", "start", 1, timeout=5)) == 1
        assert len(models.wait_for_peers(b, "run-x", "aaaaaaaaaaaa", "start", 2, timeout=10)) == 2
        with pytest.raises(PeersNotFound) as error:
            models.wait_for_peers(c, "run-x", "cccccccccccc", "start", 2, timeout=1)
        assert str(error.value).startswith("only 1 of 2 peers of run 'run-x' appeared within 1 s; "), error.value
        assert "; run 'run-x' also has 2 peer(s) with model aaaaaaaaaaaa (" in str(error.value), error.value
        with pytest.raises(PeersNotFound) as error:  # nobody of another model in this run: the plain message
            models.wait_for_peers(a, "run-z", "aaaaaaaaaaaa", "start", 2, timeout=1)
        assert str(error.value).startswith("only 1 of 2 peers of run 'run-z' appeared within 1 s; start the missing")
        assert "also has" not in str(error.value)
    finally:
        for dht in (a, b, c):
            dht.shutdown()


@pytest.mark.slow
@pytest.mark.swarm
def test_a_peer_of_another_model_trains_apart_and_the_swarm_keeps_averaging(tmp_path):
    # peers 0 and 1: the tiny model, expecting each other; peer 2: twice as wide, expecting nobody
    cfg = tiny_testnet(tmp_path / "run", peers=3, epochs=4, run_id="mixed-models", contributors=0, broker="",
                       extra_args=("--expected-peers", "2"),
                       peer_args={2: ("--n-embd", "128", "--expected-peers", "1")})
    with Testnet(cfg) as net:
        assert net.wait_finished(timeout=240), "the run did not finish 4 epochs within 240 s"
        metrics = net.metrics()
    assert net.failed_peers() == []
    fingerprints = {p: next(r.model for r in metrics[p] if isinstance(r, StartRecord)) for p in metrics}
    assert fingerprints["peer0"] == fingerprints["peer1"] != fingerprints["peer2"], fingerprints
    for peer in ("peer0", "peer1"):  # the swarm's rounds had its 2 members, and only them
        rounds = epoch_records(metrics, peer)
        assert len(rounds) == 4 and all(r.group_size == 2 for r in rounds), rounds
        # applied, but for at most one: hivemind's transport sometimes loses a partition of a round (seen once here
        # in a 2-peer group; both members then discard it, as test_swarm_robust allows too)
        assert sum(bool(r.averaged) for r in rounds) >= 3, rounds
    assert all(r.group_size == 1 and not r.averaged for r in epoch_records(metrics, "peer2"))
    # and someone said why: the peer that started last sees the others' model (peer 2 starts with peer 1)
    logs = {i: (tmp_path / "run" / f"peer{i}" / "peer.log").read_text() for i in range(3)}
    told = [i for i, text in logs.items() if "run 'mixed-models' also has" in text]
    assert told, logs
    assert "n_embd=64" in logs[2] or "n_embd=128" in logs[0] + logs[1], logs
