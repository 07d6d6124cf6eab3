"""The namespace lab: hosts on one bridge reach each other and nothing else; everything made is removed.

Needs root and `ip` (CI runs as root); elsewhere these tests are skipped with the reason.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from node.testnet.netns import NetnsError, NetnsLab, namespaces, require_netns

pytestmark = [pytest.mark.process]

try:
    require_netns()
    REASON = ""
except NetnsError as e:
    REASON = str(e)
needs_netns = pytest.mark.skipif(bool(REASON), reason=REASON or "-")

SERVE = ("import socket, sys; s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); "
         "s.bind(('0.0.0.0', 7000)); s.listen(); print('ready', flush=True); c, _ = s.accept(); c.sendall(b'hello'); c.close()")
CONNECT = ("import socket, sys; s = socket.create_connection((sys.argv[1], 7000), timeout=3); print(s.recv(5).decode())")


def _links() -> str:
    return subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout


@needs_netns
def test_hosts_talk_over_the_bridge_and_everything_is_removed_at_close(tmp_path: Path) -> None:
    env = {"PATH": os.environ["PATH"]}
    with NetnsLab("t1") as lab:
        a, b = lab.add_host("alpha"), lab.add_host("beta")
        assert a.address != b.address and a.netns.startswith("hvn-t1-")
        server = lab.popen(a, [sys.executable, "-c", SERVE], env, tmp_path, tmp_path / "server.log")
        for _ in range(100):  # the server prints "ready" once it listens
            if "ready" in (tmp_path / "server.log").read_text():
                break
            server.poll()
            subprocess.run(["sleep", "0.05"], check=True)
        got = lab.run(b, [sys.executable, "-c", CONNECT, a.address], env, tmp_path, timeout=20)
        assert got.stdout.strip() == "hello", got.stderr
        # the root namespace has no route to the bridge
        lost = subprocess.run([sys.executable, "-c", CONNECT, a.address], capture_output=True, text=True, timeout=20)
        assert lost.returncode != 0
        # the veth pairs live in the lab's namespaces, not in the root namespace
        assert "hvt1" not in _links()
        server.wait(timeout=10)
    assert not [n for n in namespaces() if n.startswith("hvn-t1-")]
    assert "hvt1" not in _links()


@needs_netns
def test_a_new_lab_removes_what_a_crashed_one_of_its_tag_left(tmp_path: Path) -> None:
    crashed = NetnsLab("t2")
    crashed.open()
    host = crashed.add_host("left")
    sleeper = crashed.popen(host, ["sleep", "600"], {"PATH": os.environ["PATH"]}, tmp_path, tmp_path / "s.log")
    # no close(): as if the supervisor had been SIGKILLed
    with NetnsLab("t2") as lab:
        assert sorted(lab.cleaned) == ["hvn-t2-hub", "hvn-t2-left"]
        assert sleeper.wait(timeout=10) == -9  # its processes were killed with it
        lab.add_host("left")  # the name is free again
    assert not [n for n in namespaces() if n.startswith("hvn-t2-")]


def test_tags_that_could_collide_with_other_links_are_refused() -> None:
    for tag in ("", "UPPER", "toolong7", "a-b"):
        with pytest.raises(ValueError):
            NetnsLab(tag)
