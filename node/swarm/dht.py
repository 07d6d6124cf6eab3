"""A peer's DHT node: start it (hivemind's start-up failures become errors that say what to fix), and the few
DHT facilities other packages use (its clock, records only their owner may write).
"""

from __future__ import annotations

import logging

import hivemind
from hivemind.dht.crypto import RSASignatureValidator
from hivemind.p2p.p2p_daemon_bindings.utils import P2PDaemonError
from hivemind.utils import get_dht_time
from hivemind.utils.crypto import RSAPrivateKey

from node.swarm.config import SwarmConfig
from protocol.errors import BootstrapError
from protocol.types import PeerId

log = logging.getLogger(__name__)

DHT = hivemind.DHT  # the running DHT node of a peer (a type for the other packages)
SigningKey = RSAPrivateKey  # the key that signs a peer's owned records (hivemind's RSA key)

START_TIMEOUT_S = 90.0  # p2pd start and bootstrap take seconds; far longer means the DHT process is gone


def start_dht(cfg: SwarmConfig) -> hivemind.DHT:
    """A running DHT joined to ``cfg.initial_peers`` (or a new swarm when there are none).

    Raises BootstrapError naming the cause when no initial peer answers, the
    listen port is taken, or the identity file is in use by a live peer.
    """
    if cfg.identity_path is not None:
        cfg.identity_path.parent.mkdir(parents=True, exist_ok=True)
    dht = hivemind.DHT(
        initial_peers=list(cfg.initial_peers),
        host_maddrs=list(cfg.listen),
        identity_path=str(cfg.identity_path) if cfg.identity_path else None,
        start=False,
        **cfg.extra_dht_options,  # type: ignore[arg-type]
    )
    try:
        # Bounded: if the DHT child dies before it is ready, hivemind would wait forever.
        dht.run_in_background(await_ready=True, timeout=START_TIMEOUT_S)
    except P2PDaemonError as e:
        raise BootstrapError(_explain(str(e), cfg)) from e
    except TimeoutError as e:
        if dht.is_alive():
            dht.terminate()
        raise BootstrapError(
            f"the DHT did not start within {START_TIMEOUT_S:.0f} s (its process {'hung' if dht.is_alive() else 'died'}); "
            "see the log above, then start the node again"
        ) from e
    return dht


def _explain(message: str, cfg: SwarmConfig) -> str:
    if "failed to connect to bootstrap peers" in message:
        peers = ", ".join(cfg.initial_peers)
        return (
            f"no initial peer answered ({peers}); check that a peer of run {cfg.run_id!r} is running there "
            "and that the address (including its /p2p/ peer id) is copied exactly"
        )
    if "address already in use" in message:
        return f"a listen address is already in use ({', '.join(cfg.listen)}); pick another port or use tcp/0"
    if "already taken by another peer" in message:
        return f"identity {cfg.identity_path} is in use by a running peer; stop it or use another --identity file"
    return f"the p2p daemon failed to start: {message.strip()}"


def peer_id_of(dht: hivemind.DHT) -> PeerId:
    return PeerId(dht.peer_id.to_base58())


def visible_maddrs(dht: hivemind.DHT) -> list[str]:
    """Addresses other peers can use as --initial-peers to join through this one."""
    return [str(a) for a in dht.get_visible_maddrs()]


def round_bits(rnd: int) -> str:
    """The matchmaking group bits of round (or epoch) ``rnd``: an averager looks for its group under its prefix and
    these bits, so peers on different rounds never meet in one group (16 bits: rounds 65536 apart share a key,
    never in practice)."""
    return format(rnd % 2**16, "016b")


def dht_time() -> float:
    """The DHT's clock: record expirations are times on it."""
    return get_dht_time()


def owned_subkey(dht: hivemind.DHT, private_key: SigningKey | None = None) -> bytes:
    """This peer's subkey for records only it may write, and the validator that enforces it on ``dht``.

    The subkey is the public key in hivemind's ``[owner:...]`` form: every DHT node refuses a write to such a
    subkey unless it is signed by the matching private key, so nobody can remove or rewrite another peer's
    record. ``private_key`` None uses the process-wide key (as hivemind's optimizer does). A DHT keeps the first
    signature validator it is given and ignores later ones: call this once per DHT (tests running several DHTs
    in one process pass a key per DHT).
    """
    validator = RSASignatureValidator(private_key)
    dht.add_validators([validator])
    return validator.local_public_key
