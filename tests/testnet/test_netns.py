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


SINK = ("import socket, time; s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); "
        "s.bind(('0.0.0.0', 7001)); s.listen(); print('ready', flush=True); c, _ = s.accept(); n = 0; t = None\n"
        "while True:\n b = c.recv(1 << 16)\n if not b: break\n t = t or time.monotonic(); n += len(b)\n"
        "print('mbit', n * 8 / (time.monotonic() - t) / 1e6, flush=True)")
SOURCE = ("import socket, sys, time; s = socket.create_connection((sys.argv[1], 7001), timeout=5); d = b'x' * 65536; "
          "t = time.monotonic()\nwhile time.monotonic() - t < 2: s.sendall(d)\ns.close()")


def _serve(lab: NetnsLab, host, code: str, log: Path):  # type: ignore[no-untyped-def]
    proc = lab.popen(host, [sys.executable, "-c", code], {"PATH": os.environ["PATH"]}, log.parent, log)
    for _ in range(200):
        if "ready" in log.read_text():
            return proc
        subprocess.run(["sleep", "0.05"], check=True)
    raise AssertionError(f"no listener: {log.read_text()}")


@needs_netns
def test_a_host_behind_nat_dials_out_nobody_dials_in_and_its_link_is_capped(tmp_path: Path) -> None:
    env = {"PATH": os.environ["PATH"]}
    with NetnsLab("t3") as lab:
        public = lab.add_host("public")
        home = lab.add_host("home", nat=True, link="20mbit")
        assert home.nat and not home.reachable and home.address != home.public_address
        # out: an upload from the NATed host reaches the public one, at the capped rate
        sink = _serve(lab, public, SINK, tmp_path / "sink.log")
        sent = lab.run(home, [sys.executable, "-c", SOURCE, public.address], env, tmp_path, timeout=30)
        assert sent.returncode == 0, sent.stderr
        sink.wait(timeout=20)
        rate = float((tmp_path / "sink.log").read_text().split()[-1])
        assert 10 <= rate <= 26, rate  # 20 Mbit/s, give or take the token bucket's burst
        # in: nothing opened from the bridge gets through, at the router's address or the private one
        _serve(lab, home, SERVE, tmp_path / "home.log")
        for address in (home.public_address, home.address):
            got = lab.run(public, [sys.executable, "-c", CONNECT, address], env, tmp_path, timeout=20)
            assert got.returncode != 0 and "hello" not in got.stdout
        # a pulled cable: no way out while down, back once up
        lab.set_link(home, up=False)
        down = lab.run(home, [sys.executable, "-c", CONNECT, public.address], env, tmp_path, timeout=20)
        assert down.returncode != 0
        lab.set_link(home, up=True)
        _serve(lab, public, SERVE, tmp_path / "again.log")
        up = lab.run(home, [sys.executable, "-c", CONNECT, public.address], env, tmp_path, timeout=20)
        assert up.stdout.strip() == "hello", up.stderr
    assert not [n for n in namespaces() if n.startswith("hvn-t3-")]
    assert "hvt3" not in _links()


@needs_netns
def test_a_lab_killed_with_sigkill_leaves_nothing_behind(tmp_path: Path) -> None:
    owner = ("import sys, time; from node.testnet.netns import NetnsLab; lab = NetnsLab('t4'); lab.open(); "
             "lab.add_host('a'); lab.add_host('b', nat=True, link='5mbit'); print('ready', flush=True); time.sleep(600)")
    proc = subprocess.Popen([sys.executable, "-c", owner], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        assert len([n for n in namespaces() if n.startswith("hvn-t4-")]) == 4  # hub, a, b and b's router
        proc.kill()
        proc.wait(timeout=10)
        for _ in range(200):  # the watchdog sees the pipe close and removes the namespaces
            if not [n for n in namespaces() if n.startswith("hvn-t4-")]:
                break
            subprocess.run(["sleep", "0.1"], check=True)
        assert not [n for n in namespaces() if n.startswith("hvn-t4-")]
        assert "hvt4" not in _links()
    finally:
        proc.kill()
        from node.testnet.netns import remove_namespaces
        remove_namespaces("hvn-t4-")


def test_link_rates_are_checked_before_anything_is_made() -> None:
    from node.testnet.netns import parse_rate
    assert parse_rate("20mbit") == "20mbit"
    for bad in ("20", "fast", "-1mbit", "0mbit", "20mbit; rm -rf /"):
        with pytest.raises(NetnsError):
            parse_rate(bad)
