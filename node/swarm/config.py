"""Configuration of a peer's place in the swarm."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class SwarmConfig:
    run_id: str  # prefix of every DHT key: peers of different runs never meet in a round
    listen: tuple[str, ...] = ("/ip4/127.0.0.1/tcp/0",)  # multiaddrs to listen on; loopback by default, tcp/0 picks a free port
    initial_peers: tuple[str, ...] = ()  # multiaddrs of any running peers; empty means this peer starts a new swarm
    identity_path: Path | None = None  # Ed25519 key file; created on first start so the peer id survives restarts
    expected_peers: int = 1  # wait until this many peers of the run are visible before the first step
    peer_wait_timeout: float = 120.0  # seconds to wait for expected_peers before giving up with PeersNotFound
    target_batch_size: int = 128  # samples the whole swarm accumulates per collaborative epoch (one optimizer step)
    # Matchmaking must outlast the tracker's refresh or peers miss each other's rounds;
    # below ~3 s hivemind also warns that request_timeout >= min_matchmaking_time.
    matchmaking_time: float = 4.0
    averaging_timeout: float = 30.0  # an all-reduce round that takes longer is abandoned (local gradients used)
    # Parameters are also averaged (in the background, by the delta rule) every this many epochs, to
    # repair drift after a failed round; gradient averaging alone keeps healthy peers identical.
    average_state_every: int = 1
    load_state_timeout: float = 60.0  # how long a late joiner waits for a peer to send it the current state
    # How each reducer combines its partition: centered-clip | trimmed-mean | median | mean (node.swarm.robust).
    # Robust by default: one peer sending a gradient scaled by -1000 ruins a plain mean.
    aggregator: str = "centered-clip"
    clip_tau: float | None = None  # CenteredClip radius; None adapts it per part (median distance to the start)
    clip_iterations: int = 3  # CenteredClip iterations; each is one pass over the partition
    trim_fraction: float = 0.3  # trimmed mean: share of values cut from each side; >= the share of attackers
    # Send m = b*m + (1-b)*g instead of g: momentum averages each honest sender's noise over ~1/(1-b)
    # rounds, so attacks that hide inside the honest spread (ALIE, Min-Max) have less room
    # (bench/robust_suite.py; docs/results/robust-suite.md). Off until its effect on the demo's loss under
    # AdamW is measured; --worker-momentum 0.9 turns it on.
    worker_momentum: float = 0.0
    # After each round the group compares sketches of its result in the DHT and discards a round it does not
    # agree on. A round is decided as soon as the records in allow (after a member died mid-round, once no
    # majority can form); this bounds the wait for silent members otherwise. 0 disables the check.
    agreement_timeout: float = 10.0
    # Smallest all-reduce group. hivemind's 2 lets a group of one honest peer and one attacker form, where no
    # rule can tell them apart (such a round at start-up leaves lasting drift); 3 with robust rules.
    min_group_size: int = 2
    extra_dht_options: dict[str, object] = field(default_factory=dict)  # passed to hivemind.DHT verbatim (tests)
