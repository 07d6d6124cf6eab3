"""``hivenet doctor``: check what a node needs, and say how to fix what is missing.

Each check returns a :class:`Check` (name, ok, detail, fix); failures are data, not
exceptions, so one run reports every problem at once. Network checks have short
timeouts: a doctor that hangs on a dead address would be the problem it diagnoses.
"""

from __future__ import annotations

import ipaddress
import shutil
import socket
import sys
import time
import uuid
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from node.config import NodeConfig
from protocol.errors import HivenetError

TIMEOUT_S = 3.0  # per network probe
MIN_FREE_BYTES = 1 << 30  # shards and checkpoints of the demo model fit in far less; 1 GiB leaves room to grow
PINNED = {"torch": "2.13.0", "hivemind": "1.1.12"}


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""  # what to do; empty when ok

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_versions() -> list[Check]:
    out = []
    py = ".".join(map(str, sys.version_info[:3]))
    out.append(Check("python", sys.version_info[:2] == (3, 11), f"Python {py}",
                     "" if sys.version_info[:2] == (3, 11) else "use Python 3.11 (scripts/venv.sh makes a 3.11 venv)"))
    for package, want in PINNED.items():
        try:
            have = metadata.version(package)
        except metadata.PackageNotFoundError:
            out.append(Check(package, False, f"{package} is not installed", f"install hivenet: scripts/venv.sh (pins {package}=={want})"))
            continue
        ok = have.split("+")[0] == want
        out.append(Check(package, ok, f"{package} {have}" + ("" if ok else f" (hivenet is tested with {want})"),
                         "" if ok else f"pip install {package}=={want} (or re-run scripts/venv.sh)"))
    return out


def _host_port(maddr: str) -> tuple[str, int] | None:
    parts = maddr.strip("/").split("/")
    if len(parts) >= 4 and parts[0] in ("ip4", "ip6", "dns", "dns4", "dns6") and parts[2] == "tcp" and parts[3].isdigit():
        return parts[1], int(parts[3])
    return None


def _classify(host: str) -> str:
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return "a DNS name"
    if ip.is_unspecified:
        return "all interfaces"
    if ip.is_loopback:
        return "loopback (this machine only)"
    if ip.is_private or ip.is_link_local:
        return "private (this network only)"
    return "public"


def _outbound_ip() -> str | None:
    """The address this machine uses toward the internet (no packet is sent: UDP connect only routes)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # TEST-NET-1: never routed for real
            return str(s.getsockname()[0])
        except OSError:
            return None


def check_listen(cfg: NodeConfig) -> Check:
    notes, bad, public = [], [], False
    for maddr in cfg.swarm.listen:
        hp = _host_port(maddr)
        if hp is None:
            bad.append(maddr)
            continue
        kind = _classify(hp[0])
        if kind == "all interfaces":
            ip = _outbound_ip()
            kind = f"all interfaces; this machine's address is {ip or 'unknown'}: {_classify(ip) if ip else 'no route out'}"
        public = public or kind.endswith("public")
        notes.append(f"{maddr}: {kind}")
    if bad:
        return Check("listen addresses", False, f"not a /ip4|ip6|dns/HOST/tcp/PORT multiaddr: {', '.join(bad)}",
                     "fix swarm.listen (--listen), e.g. /ip4/0.0.0.0/tcp/31337")
    detail = "; ".join(notes) + ("" if public else ". Peers outside this network cannot dial in; this node can still dial out")
    return Check("listen addresses", True, detail)


def _tcp_reachable(host: str, port: int) -> str | None:
    """None when something accepts TCP at host:port, else the reason."""
    try:
        with socket.create_connection((host, port), timeout=TIMEOUT_S):
            return None
    except OSError as e:
        return e.strerror or type(e).__name__


def check_bootstrap(cfg: NodeConfig) -> tuple[Check, list[str]]:
    """TCP reachability of each initial peer; also returns the reachable ones (for the p2p handshake)."""
    peers = cfg.swarm.initial_peers
    if not peers:
        return Check("bootstrap peers", True, "none configured: this node starts a new swarm"), []
    dead, alive = [], []
    for maddr in peers:
        hp = _host_port(maddr)
        reason = "not a /ip4|ip6|dns/HOST/tcp/PORT/p2p/ID multiaddr" if hp is None else _tcp_reachable(*hp)
        (dead if reason else alive).append((maddr, reason))
    if dead:
        listed = "; ".join(f"{m} ({r})" for m, r in dead)
        return Check("bootstrap peers", False, f"{len(dead)} of {len(peers)} unreachable: {listed}",
                     "start a peer there, or replace swarm.initial_peers (--initial-peers) with the address a running "
                     "peer prints at start ('listening on ...'); a firewall may also block the port"), [m for m, _ in alive]
    return Check("bootstrap peers", True, f"{len(alive)} reachable over TCP: {', '.join(m for m, _ in alive)}"), [m for m, _ in alive]


def check_p2pd(cfg: NodeConfig, reachable_peers: list[str]) -> list[Check]:
    """Start a throwaway DHT (p2pd) on loopback, joined through the TCP-reachable bootstrap peers."""
    from node.swarm.config import SwarmConfig
    from node.swarm.dht import start_dht

    probe = SwarmConfig(run_id=f"doctor-{uuid.uuid4().hex[:8]}", listen=("/ip4/127.0.0.1/tcp/0",), initial_peers=tuple(reachable_peers))
    started = time.monotonic()
    try:
        dht = start_dht(probe)
    except HivenetError as e:
        if "no initial peer answered" in str(e):
            return [Check("p2pd", True, "the p2p daemon starts"),
                    Check("bootstrap handshake", False, f"TCP is open but no hivemind peer answered: {e}",
                          "check the /p2p/ peer id in the address (copy it from the peer's 'listening on' log line)")]
        return [Check("p2pd", False, str(e), "reinstall hivemind's wheel (it bundles p2pd): scripts/venv.sh")]
    try:
        took = time.monotonic() - started
        joined = f"; joined through {len(reachable_peers)} bootstrap peer(s)" if reachable_peers else ""
        out = [Check("p2pd", True, f"the p2p daemon started in {took:.1f} s{joined}")]
        if reachable_peers:
            out.append(Check("bootstrap handshake", True, "the bootstrap peers answered the p2p handshake"))
        return out
    finally:
        dht.shutdown()


def check_chain(cfg: NodeConfig) -> list[Check]:
    """Chain reachable (JSON-RPC) and every contract of the deployment file present on it."""
    from node.ledger.chain import Chain
    from node.ledger.config import LedgerConfig

    if cfg.rpc_url is None:
        return [Check("chain", True, "embedded chain (eth-tester inside the process): nothing to reach")]
    ledger = LedgerConfig(rpc_url=cfg.rpc_url, request_timeout_s=TIMEOUT_S, retry_attempts=1)
    try:
        chain = Chain.connect(ledger)
        chain_id = chain.chain_id()
    except HivenetError as e:
        return [Check("chain", False, f"no answer from {cfg.rpc_url}: {e}",
                      f"start the chain node (e.g. anvil --port {cfg.rpc_url.rsplit(':', 1)[-1].strip('/')}) or fix ledger.rpc_url (--rpc-url)")]
    out = [Check("chain", True, f"{cfg.rpc_url} answers, chain id {chain_id}")]
    if cfg.deployment is None:
        return out + [Check("contracts", True, "no deployment file configured (trainers need none; validators set ledger.deployment)")]
    from eth_account import Account

    from node.ledger.client import LedgerClient
    from node.ledger.deployment import Deployment
    from node.ledger.outbox import Outbox

    fix = (f"deploy them: `hivenet ledger deploy --rpc {cfg.rpc_url} --deployment {cfg.deployment}`, or point "
           "ledger.deployment (--deployment) at the file written for this chain")
    try:
        deployment = Deployment.load(cfg.deployment)
        client = LedgerClient(chain, Account.create(), Outbox(None))  # a throwaway account: reads only
        try:
            client.attach(deployment)  # checks the chain id and that every contract has code
        finally:
            client.close()
    except HivenetError as e:
        return out + [Check("contracts", False, str(e), fix)]
    return out + [Check("contracts", True, f"token, registries and ledger have code at the addresses in {cfg.deployment}")]


def check_broker(cfg: NodeConfig) -> Check:
    broker = cfg.telemetry.broker
    if broker is None:
        return Check("broker", True, "telemetry is off (telemetry.broker is empty)")
    import asyncio

    import aiomqtt

    async def connect() -> None:
        async with aiomqtt.Client(broker.host, broker.port, timeout=TIMEOUT_S):
            pass

    try:
        asyncio.run(asyncio.wait_for(connect(), TIMEOUT_S + 1))
    except (aiomqtt.MqttError, OSError, TimeoutError) as e:
        return Check("broker", False, f"no MQTT broker at {broker.url} ({e or type(e).__name__}); the node would train without telemetry",
                     f"start one (apt-get install mosquitto; mosquitto -p {broker.port}), fix telemetry.broker (--broker), "
                     'or set it to "" to turn telemetry off')
    return Check("broker", True, f"MQTT broker at {broker.url} accepts connections")


def check_disk(cfg: NodeConfig) -> Check:
    paths = {"working directory": Path.cwd()}
    train = cfg.values
    for label, key in (("checkpoint", "train.checkpoint"), ("shard store", "train.shard_store")):
        if train.get(key) is not None:
            paths[label] = Path(train[key])
    notes, low = [], []
    for label, path in paths.items():
        probe = path
        while not probe.exists() and probe != probe.parent:  # the nearest existing parent holds the space
            probe = probe.parent
        free = shutil.disk_usage(probe).free
        notes.append(f"{label} {path}: {free / 2**30:.1f} GiB free")
        if free < MIN_FREE_BYTES:
            low.append(label)
    if low:
        return Check("disk space", False, "; ".join(notes),
                     f"free space or move the {', '.join(low)} to a disk with at least {MIN_FREE_BYTES >> 30} GiB free")
    return Check("disk space", True, "; ".join(notes))


def run_checks(cfg: NodeConfig, p2p: bool = True) -> list[Check]:
    checks = check_versions()
    checks.append(check_listen(cfg))
    bootstrap, reachable = check_bootstrap(cfg)
    checks.append(bootstrap)
    if p2p:
        checks += check_p2pd(cfg, reachable)
    checks += check_chain(cfg)
    checks.append(check_broker(cfg))
    checks.append(check_disk(cfg))
    return checks
