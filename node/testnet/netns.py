"""Linux network namespaces on one bridge: a machine of its own for every role of a testnet.

    with NetnsLab("a1b2c3") as lab:                 # root; cleans what an earlier lab of this tag left
        chain = lab.add_host("chain")              # namespace hvn-a1b2c3-chain, 10.231.0.2 on the bridge
        proc = lab.popen(chain, ["anvil", "--host", "0.0.0.0"], env={...}, cwd=home, log=home / "out.txt")
    # every process in the lab's namespaces is killed, every namespace and link it made removed

Layout: a hub namespace holds the bridge; each host namespace gets a veth pair, one end in the hub on the
bridge, the other inside the host as ``eth0`` with its own address, and its own loopback. The root
namespace gains nothing (no bridge, no route), so roles reach each other only over the bridge, and
nothing of the host's network (its loopback services included) is reachable from a role.

Ownership: every name starts with ``hvn-<tag>-`` (links ``hv<tag><n>``). A lab removes those left by an
earlier one of the same tag (a crash, SIGKILL) before it builds, and always on close; a namespace's
processes are killed before it is deleted, which also deletes its links.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from protocol.errors import HivenetError

PREFIX = "hvn-"
SUBNET = ipaddress.ip_network("10.231.0.0/24")  # private; lives only on the lab's own bridge
_TAG = re.compile(r"^[a-z0-9]{1,6}$")  # link names are at most 15 bytes: "hv" + tag + index + end letter


class NetnsError(HivenetError, RuntimeError):
    """The namespaces could not be made (not root, no `ip`, a kernel without them) or a command failed."""


@dataclass(frozen=True)
class Host:
    role: str
    netns: str
    address: str  # IPv4 on the lab's bridge


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and out.returncode != 0:
        raise NetnsError(f"`ip {' '.join(args)}` failed: {out.stderr.strip() or out.stdout.strip()}")
    return out


def require_netns() -> None:
    """NetnsError naming the fix unless this process can make network namespaces."""
    if os.geteuid() != 0:
        raise NetnsError("--isolation netns needs root (network namespaces); run as root or use --isolation process")
    if shutil.which("ip") is None:
        raise NetnsError("--isolation netns needs the `ip` command: apt-get install iproute2")


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

    def __enter__(self) -> NetnsLab:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        require_netns()
        self.cleaned = remove_namespaces(self.prefix)
        _ip("netns", "add", self.hub)
        _ip("-n", self.hub, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.hub, "link", "set", "br0", "up")

    def add_host(self, role: str) -> Host:
        if not re.match(r"^[a-z0-9-]{1,24}$", role) or role == "hub" or role in self.hosts:
            raise ValueError(f"bad or repeated role name {role!r}")
        index = len(self.hosts)
        host = Host(role, f"{self.prefix}{role}", str(next(self._addresses)))
        outer, inner = f"hv{self.tag}{index}o", f"hv{self.tag}{index}i"
        _ip("netns", "add", host.netns)
        self.hosts[role] = host  # from here on, close() removes it whatever fails next
        _ip("link", "add", outer, "type", "veth", "peer", "name", inner)
        _ip("link", "set", outer, "netns", self.hub)
        _ip("link", "set", inner, "netns", host.netns)
        _ip("-n", self.hub, "link", "set", outer, "master", "br0", "up")
        _ip("-n", host.netns, "link", "set", inner, "name", "eth0")
        _ip("-n", host.netns, "addr", "add", f"{host.address}/{SUBNET.prefixlen}", "dev", "eth0")
        _ip("-n", host.netns, "link", "set", "eth0", "up")
        _ip("-n", host.netns, "link", "set", "lo", "up")
        return host

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
        """Kills every process of the lab and deletes its namespaces (their links go with them)."""
        return remove_namespaces(self.prefix)
