"""Linux network namespaces on one bridge: a machine of its own for every role of a testnet.

    with NetnsLab("a1b2c3") as lab:                 # root; cleans what an earlier lab of this tag left
        chain = lab.add_host("chain")              # namespace hvn-a1b2c3-chain, 10.231.0.2 on the bridge
        proc = lab.popen(chain, ["anvil", "--host", "0.0.0.0"], env={...}, cwd=home, log=home / "out.txt")
    # every process in the lab's namespaces is killed, every namespace and link it made removed

Layout: a hub namespace holds the bridge; each host namespace gets a veth pair, one end in the hub on the
bridge, the other inside the host as ``eth0`` with its own address, and its own loopback. The root
namespace gains nothing (no bridge, no route), so roles reach each other only over the bridge, and
nothing of the host's network (its loopback services included) is reachable from a role.

A host can sit behind a NAT (``add_host(role, nat=True)``): it gets a private subnet of its own and a router
namespace on the bridge that masquerades what the host sends and drops every connection opened from the
bridge, as a home router does; the host dials out, nobody dials in. ``link="20mbit"`` caps a host's upload
and download with a token bucket (``tc tbf``) on both ends of its link (this kernel has no ``netem``, so
rates can be capped but no latency added).

Ownership: every name starts with ``hvn-<tag>-`` (links ``hv<tag><n>``). A lab removes those left by an
earlier one of the same tag (a crash, SIGKILL) before it builds, and always on close; a namespace's
processes are killed before it is deleted, which also deletes its links, routes, iptables rules and
qdiscs: nothing is ever added to the root namespace. A watchdog process started at open removes the lab's
namespaces when the lab's process dies without closing it (SIGKILL included).
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from protocol.errors import HivenetError

PREFIX = "hvn-"
SUBNET = ipaddress.ip_network("10.231.0.0/24")  # private; lives only on the lab's own bridge
NAT_SUBNETS = ipaddress.ip_network("10.232.0.0/16")  # one /24 per host behind a NAT, behind its own router
_RATE = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(kbit|mbit|gbit)$")
_TAG = re.compile(r"^[a-z0-9]{1,6}$")  # link names are at most 15 bytes: "hv" + tag + index + end letter


class NetnsError(HivenetError, RuntimeError):
    """The namespaces could not be made (not root, no `ip`, a kernel without them) or a command failed."""


@dataclass(frozen=True)
class Host:
    role: str
    netns: str
    address: str  # IPv4 of the host itself: on the bridge, or on its private subnet when behind a NAT
    public_address: str = ""  # what others see: its own address, or its router's when behind a NAT
    nat: bool = False
    link: str | None = None  # a tc rate ("20mbit") capping upload and download, or None

    @property
    def reachable(self) -> bool:
        """Whether a host on the bridge can open a connection to it."""
        return not self.nat


def rate_bits(rate: str) -> float:
    """Bits per second of a tc rate (``500kbit``, ``20mbit``, ``1gbit``); NetnsError naming it otherwise."""
    match = _RATE.match(rate)
    bits = float(match.group(1)) * {"kbit": 1e3, "mbit": 1e6, "gbit": 1e9}[match.group(2)] if match else 0.0
    if bits <= 0:
        raise NetnsError(f"a link rate is a positive number with kbit, mbit or gbit (e.g. 20mbit), not {rate!r}")
    return bits


def parse_rate(rate: str) -> str:
    """``rate`` if tc reads it as a bit rate; NetnsError naming it otherwise."""
    rate_bits(rate)
    return rate


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and out.returncode != 0:
        raise NetnsError(f"`ip {' '.join(args)}` failed: {out.stderr.strip() or out.stdout.strip()}")
    return out


def require_netns(nat: bool = False, links: bool = False) -> None:
    """NetnsError naming the fix unless this process can make network namespaces (with NATs, with link caps)."""
    if os.geteuid() != 0:
        raise NetnsError("--isolation netns needs root (network namespaces); run as root or use --isolation process")
    if shutil.which("ip") is None:
        raise NetnsError("--isolation netns needs the `ip` command: apt-get install iproute2")
    if nat and shutil.which("iptables") is None:
        raise NetnsError("a host behind a NAT needs `iptables`: apt-get install iptables (scripts/test-services.sh does)")
    if links and shutil.which("tc") is None:
        raise NetnsError("link caps need `tc`: apt-get install iproute2")


def _run(argv: list[str]) -> None:
    out = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        raise NetnsError(f"`{' '.join(argv)}` failed: {out.stderr.strip() or out.stdout.strip()}")


def namespaces() -> list[str]:
    out = _ip("netns", "list", check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def kill_inside(netns: str) -> int:
    """SIGKILL every process in ``netns``; the number killed."""
    pids = [int(p) for p in _ip("netns", "pids", netns, check=False).stdout.split() if p.isdigit()]
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return len(pids)


def remove_namespaces(prefix: str) -> list[str]:
    """Kills the processes in, and deletes, every namespace whose name starts with ``prefix``."""
    gone = []
    for name in namespaces():
        if name.startswith(prefix):
            if kill_inside(name):
                time.sleep(0.2)  # the kernel releases a namespace's sockets once its last process is reaped
            _ip("netns", "delete", name, check=False)
            gone.append(name)
    return gone


class NetnsLab:
    def __init__(self, tag: str) -> None:
        if not _TAG.match(tag):
            raise ValueError(f"a lab tag is 1-6 lower-case letters or digits, not {tag!r}")
        self.tag = tag
        self.prefix = f"{PREFIX}{tag}-"
        self.hub = f"{self.prefix}hub"
        self.hosts: dict[str, Host] = {}
        self._addresses = SUBNET.hosts()
        next(self._addresses)  # .1 stays free (a gateway, should one ever be added)
        self.cleaned: list[str] = []  # leftovers of an earlier lab of this tag, removed at open
        self._nat_subnets = NAT_SUBNETS.subnets(new_prefix=24)
        self._watchdog: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> NetnsLab:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        require_netns()
        self.cleaned = remove_namespaces(self.prefix)
        self._start_watchdog()
        _ip("netns", "add", self.hub)
        _ip("-n", self.hub, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.hub, "link", "set", "br0", "up")

    def _start_watchdog(self) -> None:
        # The watchdog reads its stdin, a pipe only this process holds open: when this process ends in any
        # way, SIGKILL included, the kernel closes the pipe and the watchdog removes what the lab left.
        # It runs in a session of its own, so a signal to this process's group does not take it too.
        reap = ("import sys; sys.stdin.buffer.read(); from node.testnet.netns import remove_namespaces; "
                f"remove_namespaces({self.prefix!r})")
        root = str(Path(__file__).resolve().parents[2])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH", "")]))}
        self._watchdog = subprocess.Popen([sys.executable, "-c", reap], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL, env=env, start_new_session=True)

    def add_host(self, role: str, nat: bool = False, link: str | None = None) -> Host:
        """A host named ``role`` on the bridge, or behind a NAT of its own; ``link`` caps both directions."""
        if not re.match(r"^[a-z0-9-]{1,24}$", role) or role == "hub" or role in self.hosts or role.endswith("-nat"):
            raise ValueError(f"bad or repeated role name {role!r}")
        if link is not None:
            parse_rate(link)
        require_netns(nat=nat, links=link is not None)
        index = len(self.hosts)
        netns = f"{self.prefix}{role}"
        if not nat:
            address = str(next(self._addresses))
            host = Host(role, netns, address, public_address=address, link=link)
            self.hosts[role] = host  # from here on, close() removes it whatever fails next
            _ip("netns", "add", netns)
            outer = self._wire_to_bridge(netns, index, host.address)
            if link:  # upload: the host's own end; download: the bridge's end of its link
                self._cap(netns, "eth0", link)
                self._cap(self.hub, outer, link)
            return host
        router, lan = f"{netns}-nat", next(self._nat_subnets)
        gateway, own = (str(a) for a in list(lan.hosts())[:2])
        host = Host(role, netns, own, public_address=str(next(self._addresses)), nat=True, link=link)
        self.hosts[role] = host
        _ip("netns", "add", router)
        _ip("netns", "add", netns)
        self._wire_to_bridge(router, index, host.public_address)
        a, b = f"hv{self.tag}{index}a", f"hv{self.tag}{index}b"
        _ip("link", "add", a, "type", "veth", "peer", "name", b)
        _ip("link", "set", a, "netns", router)
        _ip("link", "set", b, "netns", netns)
        _ip("-n", router, "link", "set", a, "name", "lan0")
        _ip("-n", router, "addr", "add", f"{gateway}/24", "dev", "lan0")
        _ip("-n", router, "link", "set", "lan0", "up")
        _ip("-n", netns, "link", "set", b, "name", "eth0")
        _ip("-n", netns, "addr", "add", f"{own}/24", "dev", "eth0")
        _ip("-n", netns, "link", "set", "eth0", "up")
        _ip("-n", netns, "link", "set", "lo", "up")
        _ip("-n", netns, "route", "add", "default", "via", gateway)
        nat_rules = [
            ["-t", "nat", "-A", "POSTROUTING", "-s", str(lan), "-o", "eth0", "-j", "MASQUERADE"],
            # a home router: replies to what the host opened come back, nothing opened from outside gets in
            ["-A", "FORWARD", "-i", "eth0", "-o", "lan0", "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"],
            ["-A", "FORWARD", "-i", "eth0", "-o", "lan0", "-j", "DROP"],
            ["-A", "INPUT", "-i", "eth0", "-m", "conntrack", "--ctstate", "NEW", "-j", "DROP"],
        ]
        _run(["ip", "netns", "exec", router, "sysctl", "-qw", "net.ipv4.ip_forward=1"])
        for rule in nat_rules:
            _run(["ip", "netns", "exec", router, "iptables", *rule])
        if link:
            self._cap(netns, "eth0", link)
            self._cap(router, "lan0", link)
        return host

    def _wire_to_bridge(self, netns: str, index: int, address: str) -> str:
        """A veth pair from ``netns`` (``eth0``, ``address``) to the hub's bridge; the hub end's name."""
        outer, inner = f"hv{self.tag}{index}o", f"hv{self.tag}{index}i"
        _ip("link", "add", outer, "type", "veth", "peer", "name", inner)
        _ip("link", "set", outer, "netns", self.hub)
        _ip("link", "set", inner, "netns", netns)
        _ip("-n", self.hub, "link", "set", outer, "master", "br0", "up")
        _ip("-n", netns, "link", "set", inner, "name", "eth0")
        _ip("-n", netns, "addr", "add", f"{address}/{SUBNET.prefixlen}", "dev", "eth0")
        _ip("-n", netns, "link", "set", "eth0", "up")
        _ip("-n", netns, "link", "set", "lo", "up")
        return outer

    @staticmethod
    def _cap(netns: str, dev: str, rate: str) -> None:
        # burst: at least one full-size frame, and ~4 ms at the rate (tbf needs burst >= rate / HZ)
        burst = max(1600, int(rate_bits(rate) / 8 / 250))
        _run(["ip", "netns", "exec", netns, "tc", "qdisc", "replace", "dev", dev, "root", "tbf", "rate", rate,
              "burst", str(burst), "latency", "50ms"])

    def set_link(self, host: Host, up: bool) -> None:
        """Takes ``host``'s link down (a cable pulled) or back up; its address and routes are kept."""
        _ip("-n", host.netns, "link", "set", "eth0", "up" if up else "down")
        if up and host.nat:
            _ip("-n", host.netns, "route", "replace", "default", "via", str(ipaddress.ip_interface(
                f"{host.address}/24").network.network_address + 1))

    def command(self, host: Host, argv: list[str]) -> list[str]:
        """``argv`` run inside ``host``'s namespace."""
        return ["ip", "netns", "exec", host.netns, *argv]

    def popen(self, host: Host, argv: list[str], env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
        """``argv`` in ``host``'s namespace, in a process group of its own, output appended to ``log``."""
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as out:
            return subprocess.Popen(self.command(host, argv), stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, cwd=cwd, env=env, start_new_session=True)

    def run(self, host: Host, argv: list[str], env: dict[str, str], cwd: Path,
            timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.command(host, argv), capture_output=True, text=True, cwd=cwd, env=env,
                              timeout=timeout)

    def close(self) -> list[str]:
        """Kills every process of the lab and deletes its namespaces (their links, rules and qdiscs go with them)."""
        removed = remove_namespaces(self.prefix)
        if self._watchdog is not None:
            self._watchdog.stdin.close()  # type: ignore[union-attr]
            self._watchdog.wait(timeout=30)
            self._watchdog = None
        return removed
