"""Run a scenario: start its testnet, play its events on the timeline, check its expectations.

    outcome = run_scenario(load_scenario(Path("node/testnet/scenarios/churn.toml")), RunnerConfig(Path("runs/churn")))
    outcome.passed, outcome.messages      # also in RUN_DIR/result.json; the report in RUN_DIR/report.html

How each fault is made on one machine:
- kill: SIGKILL of the peer's process group (a crash); restart: start it again (it resumes from its checkpoint).
- partition: SIGSTOP of the peer's process group, heal: SIGCONT. An approximation: a real partition
  keeps the peer computing and its sockets open; a stopped peer neither computes nor answers, and its
  TCP peers see silence rather than resets, which is what the others observe of a partitioned peer.
- byzantine: the peer stops gracefully (checkpoint) and restarts with ``--attack NAME``.
- broker_stop/broker_start: the scenario's MQTT broker (a process of its own) is killed and started
  again on the same port.
- chain_stop/chain_start: SIGSTOP/SIGCONT of anvil (the chain is unreachable, its state is kept).
- poisoned_shard/duplicate_shard: a contribution vetted with the others before the peers start.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from node.records import EpochRecord, StartRecord
from node.testnet.checks import check_expectations
from node.testnet.network import Testnet, TestnetConfig
from node.testnet.peers import PeerProcess, free_port
from node.testnet.scenario import Event, Scenario


@dataclass(frozen=True)
class RunnerConfig:
    run_dir: Path  # the testnet's run dir; the timeline, result.json and the report go here too
    poll_s: float = 0.5  # how often events' triggers are checked
    stop_timeout_s: float = 60.0  # graceful stop of a peer (byzantine restart, end of run) before SIGKILL
    report: bool = True  # write report.html and the charts at the end


@dataclass
class Outcome:
    passed: bool
    messages: list[str]  # one per expectation (and per problem of the run itself), "ok: ..." or "FAIL: ..."
    summary: dict[str, Any] = field(default_factory=dict)
    timeline: list[dict[str, Any]] = field(default_factory=list)


class BrokerProcess:
    """The scenario's MQTT broker in a process of its own, so an outage is real and the port comes back.

    (An in-process amqtt broker that shuts down with clients connected can keep its listening socket
    until the process exits: a restart on the same port then fails with "address already in use".)
    """

    def __init__(self, port: int, log_path: Path) -> None:
        self.port, self.log_path = port, log_path
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 20.0) -> None:
        code = ("import time; from node.telemetry.broker import EmbeddedBroker; "
                f"b = EmbeddedBroker('127.0.0.1', {self.port}); b.start(); print('ready', flush=True); time.sleep(1e9)")
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-c", code], stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the MQTT broker exited with {self.proc.returncode}; see {self.log_path}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.2)
        raise TimeoutError(f"the MQTT broker did not listen on port {self.port} within {timeout_s:g} s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)  # an outage, not a goodbye: clients see the connection drop
            self.proc.wait(timeout=10)


def poisoned_text(kind: str, seed: int = 7) -> bytes:
    """A contribution vetting must refuse: spam (one line repeated), random bytes, or keyboard mash."""
    rng = random.Random(seed)
    if kind == "random-bytes":
        return b"\n\n".join(bytes(rng.getrandbits(8) for _ in range(400)) for _ in range(50))
    if kind == "mash":
        keys = "qwertyuiopasdfghjklzxcvbnm"
        return b"\n\n".join(" ".join("".join(rng.choice(keys) for _ in range(rng.randint(2, 9)))
                                     for _ in range(40)).encode() for _ in range(80))
    return b"\n\n".join([b"Buy cheap watches online today at the best price."] * 300)


def duplicate_text(contributor: int, contributors: int) -> bytes:
    """Contributor ``contributor``'s text resubmitted with a new first paragraph (a new shard id, old records)."""
    from node.data.vetted import split_text
    from node.train.data import demo_corpus

    return b"A fresh contribution, honestly.\n\n" + split_text(demo_corpus().train, contributors)[contributor]


def testnet_config(s: Scenario, run_dir: Path, broker_url: str | None = None) -> TestnetConfig:
    """``broker_url``: an MQTT broker the runner manages (scenarios with broker events); else per [network]."""
    n = s.network
    extra = tuple(poisoned_text(e.kind) if e.action == "poisoned_shard" else duplicate_text(e.of, n.data_contributors)
                  for e in s.events if e.action in ("poisoned_shard", "duplicate_shard"))
    return TestnetConfig(
        run_dir=run_dir, peers=n.peers, run_id=f"scenario-{s.name}", epochs=n.epochs, target_batch_size=n.target_batch_size,
        batch_size=n.batch_size, n_layer=n.n_layer, n_embd=n.n_embd, device="cpu", lr=n.lr, peer_wait_timeout=n.peer_wait_timeout,
        contributors=n.data_contributors, validators=n.validators, chain=n.chain, receipt_p=n.receipt_p,
        broker=broker_url if broker_url else (None if n.broker == "embedded" else ""), aggregator=n.aggregator, extra_shards=extra,
        peer_args={i: ("--attack", n.attack) for i in n.byzantine},
        # peer0 evaluates every epoch (the others' later --eval-every 0 wins): the loss chart
        extra_args=("--eval-every", "1"),
    )


class ScenarioRun:
    """One scenario against one live testnet; ``run()`` drives it from start to verdict."""

    def __init__(self, scenario: Scenario, cfg: RunnerConfig, log: Callable[[str], None] = print) -> None:
        self.s, self.cfg, self.log = scenario, cfg, log
        outages = any(e.action.startswith("broker_") for e in scenario.events)
        self.broker = BrokerProcess(free_port(), cfg.run_dir / "broker.log") if outages else None
        self.net = Testnet(testnet_config(scenario, cfg.run_dir, self.broker.url if self.broker else None))
        self.timeline: list[dict[str, Any]] = []
        self.byzantine: set[int] = set(scenario.network.byzantine)
        self.partitioned: set[int] = set()
        self._heals: list[tuple[float, int, int]] = []  # (elapsed s, peer, line) of partitions with a duration
        self._stop = False
        self.chain_paused = False

    def request_stop(self) -> None:
        """Stop early (Ctrl-C): the run ends as a failure, with its report."""
        self._stop = True

    def elapsed(self) -> float:
        return time.time() - self.net.started_at

    def swarm_epoch(self) -> int:
        return max((r.new_epoch for recs in self.net.metrics().values() for r in recs if isinstance(r, EpochRecord)), default=0)

    def _record(self, action: str, line: int, peer: int | None = None, detail: str = "", at: float | None = None) -> None:
        entry = {"t": round(self.elapsed() if at is None else at, 2), "epoch": self.swarm_epoch(), "action": action, "peer": peer,
                 "line": line, "detail": detail}
        self.timeline.append(entry)
        self.log(f"[{entry['t']:7.1f} s] {action}{f' peer{peer}' if peer is not None else ''} {detail}".rstrip())

    def _due(self, e: Event) -> bool:
        return self.elapsed() >= e.at if e.at is not None else self.swarm_epoch() >= (e.after_epoch or 0)

    def run(self) -> Outcome:
        self.cfg.run_dir.mkdir(parents=True, exist_ok=True)
        (self.cfg.run_dir / "scenario.json").write_text(json.dumps(
            {"name": self.s.name, "description": self.s.description, "source": self.s.source,
             "network": asdict(self.s.network), "events": [asdict(e) for e in self.s.events],
             "expect": [asdict(x) for x in self.s.expectations]}, indent=2) + "\n")
        problems: list[str] = []
        pending = [e for e in self.s.events if e.action not in ("poisoned_shard", "duplicate_shard")]
        service = None
        try:
            if self.broker is not None:
                self.broker.start()
            self.net.start()
            for e in self.s.events:
                if e.action in ("poisoned_shard", "duplicate_shard"):
                    self._record(e.action, e.line, detail="vetted with the other contributions before the peers started", at=0.0)
            service = self.net.validation
            deadline = time.monotonic() + self.s.timeout_s
            while time.monotonic() < deadline:
                for e in [e for e in pending if self._due(e)]:
                    pending.remove(e)
                    try:
                        self._apply(e)
                    except Exception as exc:  # a fault that could not be made is a failed run, not a crash
                        problems.append(f"FAIL: event {e.describe()} could not run: {type(exc).__name__}: {exc}")
                        self._record(e.action, e.line, e.peer, f"failed: {exc}")
                for h in [h for h in self._heals if self.elapsed() >= h[0]]:
                    self._heals.remove(h)
                    self._heal(h[1], h[2], "partition over")
                if self._stop:
                    problems.append("FAIL: stopped on request before the scenario finished")
                    break
                if self.net.failed_peers():
                    problems += [f"FAIL: {p} failed: {self.net.failure_reason(p)}" for p in self.net.failed_peers()]
                    break
                if self._finished() and not self._heals and not any(
                        e.action in ("restart", "add_peer", "heal") and e.at is not None for e in pending):
                    break  # an epoch-triggered event left now can never fire: nobody trains any more
                time.sleep(self.cfg.poll_s)
            else:
                problems.append(f"FAIL: the run did not finish within timeout_s = {self.s.timeout_s:g} s")
            problems += [f"FAIL: event {e.describe()} never ran: the swarm stopped at epoch {self.swarm_epoch()}"
                         for e in pending]
        finally:
            for i in list(self.partitioned):  # a stopped group would ignore SIGTERM until SIGKILL
                self._heal(i, 0, "end of run")
            if self.chain_paused:  # settling at the end needs the chain
                self._pause_chain(False)
                self._record("chain_start", 0, detail="end of run")
            self.net.stop(self.cfg.stop_timeout_s)
            if self.broker is not None:
                self.broker.stop()
        summary = self.net.write_summary()
        (self.cfg.run_dir / "timeline.json").write_text(json.dumps(
            {"started_at": self.net.started_at, "events": self.timeline}, indent=2) + "\n")
        accounts = self._accounts(service)
        receipts = _receipts_per_account(service)
        (self.cfg.run_dir / "accounts.json").write_text(json.dumps({"accounts": accounts, "receipts": receipts}, indent=2) + "\n")
        messages = problems + check_expectations(self.s, summary, self.net.metrics(), accounts, self.byzantine)
        passed = not any(m.startswith("FAIL") for m in messages)
        (self.cfg.run_dir / "result.json").write_text(json.dumps(
            {"scenario": self.s.name, "passed": passed, "messages": messages}, indent=2) + "\n")
        if self.cfg.report:
            from node.testnet.report import write_report

            write_report(self.cfg.run_dir)
        return Outcome(passed, messages, summary, self.timeline)

    def _accounts(self, service: Any) -> dict[str, str]:
        """peerN / contributorN -> reward address (what the tokens and receipts checks look up)."""
        out = {f"peer{i}": a for i, a in self.net.accounts.items()}
        owners = service.cfg.validator.owners if service is not None else {}
        for s in self.net.shards:
            if s.get("shard_id") in owners:
                out[f"contributor{s['contributor']}"] = owners[s["shard_id"]]
        return out

    def _apply(self, e: Event) -> None:
        peers = self.net.peers
        if e.action == "kill":
            peers[e.peer].kill()  # type: ignore[index]
        elif e.action == "restart":
            p = peers[e.peer]  # type: ignore[index]
            if p.alive():
                self._record("restart", e.line, e.peer, "skipped: the peer is running")
                return
            p.args = self._joiner_args(p.args, e.peer)  # type: ignore[arg-type]
            p.start()
        elif e.action == "add_peer":
            self._add_peer()
            self._record("add_peer", e.line, len(peers) - 1)
            return
        elif e.action == "partition":
            self._signal_group(peers[e.peer], signal.SIGSTOP)  # type: ignore[index]
            self.partitioned.add(e.peer)  # type: ignore[arg-type]
            if e.duration is not None:
                self._heals.append((self.elapsed() + e.duration, e.peer, e.line))  # type: ignore[arg-type]
        elif e.action == "heal":
            self._heal(e.peer, e.line, "")  # type: ignore[arg-type]
            return
        elif e.action == "byzantine":
            p = peers[e.peer]  # type: ignore[index]
            p.stop(self.cfg.stop_timeout_s)  # checkpointed: it resumes where it was, now as an attacker
            p.args = [*p.args, "--attack", e.attack]  # type: ignore[list-item]
            p.start()
            self.byzantine.add(e.peer)  # type: ignore[arg-type]
            self._record("byzantine", e.line, e.peer, f"attack {e.attack}")
            return
        elif e.action == "broker_stop" and self.broker is not None:
            self.broker.stop()
        elif e.action == "broker_start" and self.broker is not None:
            self.broker.start()
        elif e.action in ("chain_stop", "chain_start"):
            self._pause_chain(e.action == "chain_stop")
        self._record(e.action, e.line, e.peer)

    def _finished(self) -> bool:
        """Every peer has exited, but for peers still partitioned (they are healed and stopped at the end)."""
        return all(not p.alive() or p.index in self.partitioned for p in self.net.peers) and \
            any(not p.alive() for p in self.net.peers)

    def _training(self) -> list[int]:
        """Peers that are up and have finished an epoch since their last start."""
        metrics = self.net.metrics()
        out = []
        for p in self.net.peers:
            recs = metrics.get(p.name, [])
            last_start = max((i for i, r in enumerate(recs) if isinstance(r, StartRecord)), default=None)
            if p.alive() and p.index not in self.partitioned and last_start is not None and \
                    any(isinstance(r, EpochRecord) for r in recs[last_start:]):
                out.append(p.index)
        return out

    def _joiner_args(self, args: list[str], index: int) -> list[str]:
        """A peer joining a running swarm expects the peers training now, not the run's initial count: a
        joiner waits until the progress tracker sees --expected-peers peers, and with a peer down (or
        another joiner still starting) the initial count is never reached while the swarm trains."""
        expected = str(max(1, len([i for i in self._training() if i != index])))
        out = list(args)
        for i, a in enumerate(out[:-1]):
            if a == "--expected-peers":
                out[i + 1] = expected
        return out

    def _pause_chain(self, pause: bool) -> None:
        anvil = self.net.validation.anvil if self.net.validation is not None else None
        if anvil is not None and anvil.poll() is None:
            os.kill(anvil.pid, signal.SIGSTOP if pause else signal.SIGCONT)
        self.chain_paused = pause

    def _heal(self, peer: int, line: int, detail: str) -> None:
        self._signal_group(self.net.peers[peer], signal.SIGCONT)
        self.partitioned.discard(peer)
        self._record("heal", line, peer, detail)

    @staticmethod
    def _signal_group(p: PeerProcess, sig: int) -> None:
        if p.proc is not None and p.alive():
            os.killpg(p.proc.pid, sig)

    def _add_peer(self) -> None:
        net = self.net
        index = len(net.peers)
        if net.cfg.validators > 0:
            from node.testnet.validation import make_keystore

            net.accounts[index] = make_keystore(net.cfg.run_dir / f"peer{index}" / "node.key")
            if net.validation is not None:
                net.validation.cfg.roles[net.accounts[index]] = "peer"
        peer = PeerProcess(index=index, dir=net.cfg.run_dir / f"peer{index}", args=self._joiner_args(net._args(index), index),
                           env=dict(net.cfg.peer_env))
        net.peers.append(peer)
        peer.start()


def _receipts_per_account(service: Any) -> dict[str, dict[str, int]]:
    """account -> {accepted, rejected} over every settled epoch (the report's receipts chart)."""
    out: dict[str, dict[str, int]] = {}
    if service is None or not service.validators:
        return out
    for s in service.validators[0].book.settled:
        for v in s.verdicts:
            row = out.setdefault(v.receipt.account.lower(), {"accepted": 0, "rejected": 0})
            row["accepted" if v.accepted else "rejected"] += 1
    return out


def run_scenario(scenario: Scenario, cfg: RunnerConfig, log: Callable[[str], None] = print) -> Outcome:
    return ScenarioRun(scenario, cfg, log).run()
