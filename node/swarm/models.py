"""Which model each peer of a run trains: peers of different models must never average together.

Peers of one run can differ in their model: one started with another ``--n-embd``, or with an older
hivenet whose model had other layers (QK-norm, say). Keyed by the run alone they share barriers, progress and
group keys: such a peer counted toward the others' start barrier, then failed to load their state for a
minute ("The size of tensor a (128) must match the size of tensor b (64)"), and nothing kept it out
of their rounds' groups (where tensors of other sizes break the round; of the same size, parameters that
mean other things get averaged). So everything a peer averages is keyed by its run *and* its model's
fingerprint (``swarm_key``): peers of other models never meet in a round or a barrier.

The fingerprint (``node.train.model.model_fingerprint``) is just a string here. Each peer also announces it
under the run (``announce``); a peer that sees others of the run with another model says so
(``describe_others``), which turns a silent split into a clear message. A record is a claim, not a proof: a
hostile peer can announce anything, and what that changes is a warning's text, never whom this peer averages
with.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import hivemind
from hivemind.utils import get_dht_time

from node.swarm import barrier
from protocol.errors import PeersNotFound

log = logging.getLogger(__name__)

_RECORD_TTL = 600.0  # seconds a model record lives; re-announced every epoch while training
_MAX_SHOWN = 3  # other models named in a message


def swarm_key(run_id: str, fingerprint: str) -> str:
    """The prefix of everything this peer averages: its run and its model."""
    return f"{run_id}_m{fingerprint}"


def _models_key(run_id: str) -> str:
    return f"{run_id}_models"


def announce(dht: hivemind.DHT, run_id: str, fingerprint: str, description: str) -> bool:
    """Record which model this peer trains for the run (one subkey per peer). False if the store failed."""
    return bool(dht.store(_models_key(run_id), subkey=dht.peer_id.to_base58(),
                          value={"fingerprint": fingerprint, "model": description, "t": time.time()},
                          expiration_time=get_dht_time() + _RECORD_TTL))


def other_models(dht: hivemind.DHT, run_id: str, fingerprint: str) -> dict[str, tuple[str, list[str]]]:
    """Models other than ``fingerprint`` announced for the run: fingerprint -> (description, peer ids).

    A malformed record (another program's, or a hostile peer's) is skipped.
    """
    found = dht.get(_models_key(run_id), latest=True)
    if found is None or not isinstance(found.value, dict):
        return {}
    out: dict[str, tuple[str, list[str]]] = {}
    for peer, entry in found.value.items():
        value: Any = getattr(entry, "value", None)
        if not isinstance(value, dict):
            continue
        fp, desc = value.get("fingerprint"), value.get("model")
        if not isinstance(fp, str) or not isinstance(desc, str) or fp == fingerprint:
            continue
        out.setdefault(fp[:32], (desc[:200], []))[1].append(str(peer))
    return out


def describe_others(run_id: str, others: dict[str, tuple[str, list[str]]], mine: str) -> str:
    """One sentence for a log line or an error: which other models the run's peers train, and what to do."""
    shown = "; ".join(f"{len(peers)} peer(s) with model {fp} ({desc})"
                      for fp, (desc, peers) in sorted(others.items(), key=lambda kv: -len(kv[1][1]))[:_MAX_SHOWN])
    return (f"run {run_id!r} also has {shown}; this peer trains {mine} and never averages with peers of another "
            "model: start every peer of a run with the same --n-layer/--n-embd and hivenet version")


def join(dht: hivemind.DHT, run_id: str, fingerprint: str, description: str) -> str:
    """Announce this peer's model for the run, warn of peers of the run with other models, and return the key
    of everything this peer averages (``swarm_key``)."""
    if not announce(dht, run_id, fingerprint, description):
        log.debug("could not announce model %s for run %r yet (re-announced every epoch)", fingerprint, run_id)
    others = other_models(dht, run_id, fingerprint)
    if others:
        log.warning("%s", describe_others(run_id, others, fingerprint))
    return swarm_key(run_id, fingerprint)


def wait_for_peers(dht: hivemind.DHT, run_id: str, fingerprint: str, name: str, expected: int, timeout: float) -> set[str]:
    """``barrier.wait_for_peers`` among the run's peers of this model; its PeersNotFound names the run's peers of
    other models, when there are some."""
    try:
        return barrier.wait_for_peers(dht, swarm_key(run_id, fingerprint), name, expected, timeout, label=run_id)
    except PeersNotFound as e:
        others = other_models(dht, run_id, fingerprint)
        if not others:
            raise
        raise PeersNotFound(f"{e}; {describe_others(run_id, others, fingerprint)}") from None


def keep_fresh(dht: hivemind.DHT, run_id: str, fingerprint: str, description: str) -> None:
    """Renew this peer's start-barrier arrival and model record (each epoch), for peers that start or restart later."""
    barrier.arrive(dht, swarm_key(run_id, fingerprint), "start", label=run_id)
    announce(dht, run_id, fingerprint, description)
