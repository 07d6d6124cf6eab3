"""Scenario files: a testnet, a timeline of faults, and the outcomes it must reach (TOML, validated).

    scenario = load_scenario(Path("node/testnet/scenarios/churn.toml"))
    scenario.events[0]     # Event(action='kill', peer=2, after_epoch=3, line=24, ...)

A scenario file is a trust boundary: everything is parsed into frozen, bounded
values here, and anything unknown, out of range or referring to a peer or
contributor that will not exist is rejected (``ScenarioError``) before a single
process starts, naming the file and line. The format, key by key, is in
node/testnet/scenarios/happy.toml and the README's "Scenarios and reports".
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from protocol.errors import ConfigError

ACTIONS = ("kill", "restart", "add_peer", "partition", "heal", "broker_stop", "broker_start", "chain_stop",
           "chain_start", "byzantine", "poisoned_shard", "duplicate_shard")
PEER_ACTIONS = ("kill", "restart", "partition", "heal", "byzantine")
SHARD_ACTIONS = ("poisoned_shard", "duplicate_shard")
CHECKS = ("final_loss", "honest_loss", "receipts_rejected", "tokens", "shard", "failed_peers", "rounds")
POISONS = ("spam", "random-bytes", "mash")
ATTACKS = ("sign-flip", "gaussian", "label-flip", "ipm", "constant", "stale")  # node.testnet.attacks.ATTACKS


class ScenarioError(ConfigError):
    """A scenario file is malformed; the message names the file and line and says what to change."""


@dataclass(frozen=True)
class NetworkSpec:
    peers: int = 3  # trainer processes started at once; add_peer events add more later
    validators: int = 1  # receipt validators (0: no receipts, no rewards: receipts/tokens checks refuse)
    data_contributors: int = 2  # one vetted shard each from the demo corpus
    epochs: int = 8  # collaborative epochs each trainer runs before it stops
    chain: str = "embedded"  # embedded | anvil (chain_stop/chain_start need anvil: a process to pause)
    broker: str = "embedded"  # embedded (in-process amqtt; broker events stop/start it) | off
    aggregator: str | None = None  # None: the peers' default (centered-clip)
    byzantine: tuple[int, ...] = ()  # peers that run `attack` from the start
    attack: str = "sign-flip"
    n_layer: int = 2  # the tiny model: scenarios are about faults, not model quality
    n_embd: int = 64
    batch_size: int = 8
    target_batch_size: int = 96
    peer_wait_timeout: float = 90.0
    receipt_p: float = 1.0  # fraction of receipts the validators recompute
    # The peers' AdamW learning rate: the tiny model's, as in the tests (the node's 1e-3 is tuned for its default
    # model; at 1e-3 the tiny one ended 12 churn epochs at 4.40, against 3.81-3.92 at 2e-3).
    lr: float = 2e-3


@dataclass(frozen=True)
class Event:
    action: str
    line: int  # where the event is in the file, for messages and the report's timeline
    at: float | None = None  # seconds after the testnet started ...
    after_epoch: int | None = None  # ... or once the swarm completed this epoch (exactly one of the two)
    peer: int | None = None  # peer index, for peer actions
    attack: str | None = None  # byzantine
    duration: float | None = None  # partition: heal after this many seconds (None: until a heal event)
    kind: str = "spam"  # poisoned_shard: what the contribution is made of
    of: int = 0  # duplicate_shard: the contributor whose text is resubmitted

    def describe(self) -> str:
        who = f" peer{self.peer}" if self.peer is not None else ""
        when = f"at {self.at:g} s" if self.at is not None else f"after epoch {self.after_epoch}"
        return f"{self.action}{who} {when} (line {self.line})"


@dataclass(frozen=True)
class Expectation:
    check: str
    line: int
    min: float | None = None
    max: float | None = None
    peer: int | None = None  # receipts_rejected, tokens: one peer (None: all)
    contributor: int | None = None  # tokens, shard
    verdict: str | None = None  # shard: pass | review | fail
    assigned: bool | None = None  # shard: whether any trainer trained on it


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    timeout_s: float  # the whole run, start to last peer stopped
    network: NetworkSpec
    events: tuple[Event, ...]
    expectations: tuple[Expectation, ...]
    source: str  # file path (or "<string>") for messages

    @property
    def total_peers(self) -> int:
        return self.network.peers + sum(e.action == "add_peer" for e in self.events)

    @property
    def total_contributors(self) -> int:
        return self.network.data_contributors + sum(e.action in SHARD_ACTIONS for e in self.events)


class _Lines:
    """Line numbers of keys and tables in the documented subset of TOML ([t], [[t]], key = value)."""

    def __init__(self, text: str) -> None:
        self.tables: dict[tuple[str, int], int] = {}  # (table, index) -> header line
        self.keys: dict[tuple[str, int, str], int] = {}  # (table, index, key) -> line
        counts: dict[str, int] = {}
        table, index = "", 0
        for n, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            if m := re.match(r"^\[\[\s*([\w.-]+)\s*\]\]", line):
                table = m.group(1)
                index = counts[table] = counts.get(table, -1) + 1
                self.tables[(table, index)] = n
            elif m := re.match(r"^\[\s*([\w.-]+)\s*\]", line):
                table, index = m.group(1), 0
                self.tables[(table, 0)] = n
            elif m := re.match(r"^([\w-]+)\s*=", line):
                self.keys.setdefault((table, index, m.group(1)), n)

    def of(self, table: str, index: int = 0, key: str | None = None) -> int:
        if key is not None and (table, index, key) in self.keys:
            return self.keys[(table, index, key)]
        return self.tables.get((table, index), 1)


class _Reader:
    """Typed, bounded reads of one table; every error names the line."""

    def __init__(self, data: dict[str, Any], lines: _Lines, source: str, table: str, index: int = 0) -> None:
        self.data, self.lines, self.source, self.table, self.index = data, lines, source, table, index
        self.line = lines.of(table, index)

    def fail(self, key: str | None, what: str) -> ScenarioError:
        where = f"[[{self.table}]] #{self.index + 1}" if self.table in ("events", "expect") else (f"[{self.table}]" if self.table else "top level")
        name = f" {key}" if key else ""
        return ScenarioError(f"{self.source}:{self.lines.of(self.table, self.index, key)}: {where}{name}: {what}")

    def known(self, allowed: tuple[str, ...]) -> None:
        for key in self.data:
            if key not in allowed:
                raise self.fail(key, f"unknown key; allowed here: {', '.join(allowed)}")

    def number(self, key: str, default: float | None, lo: float, hi: float, integer: bool = False) -> Any:
        if key not in self.data:
            return default
        v = self.data[key]
        ok = isinstance(v, int) if integer else isinstance(v, (int, float))
        if isinstance(v, bool) or not ok or not math.isfinite(v):
            raise self.fail(key, f"must be {'an integer' if integer else 'a number'}, got {v!r}")
        if not lo <= v <= hi:
            raise self.fail(key, f"must be between {lo:g} and {hi:g}, got {v!r}")
        return int(v) if integer else float(v)

    def choice(self, key: str, default: str | None, choices: tuple[str, ...]) -> Any:
        if key not in self.data:
            return default
        v = self.data[key]
        if v not in choices:
            raise self.fail(key, f"must be one of {', '.join(choices)}; got {v!r}")
        return v

    def text(self, key: str, default: str | None) -> Any:
        v = self.data.get(key, default)
        if v is not None and not isinstance(v, str):
            raise self.fail(key, f"must be a string, got {v!r}")
        return v


def parse_scenario(text: str, source: str = "<string>") -> Scenario:
    """Parse and check a scenario; raises ScenarioError naming the line of the first problem."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ScenarioError(f"{source}: not valid TOML: {e}") from None
    lines = _Lines(text)
    top = _Reader(data, lines, source, "")
    top.known(("name", "description", "timeout_s", "network", "events", "expect"))
    name = top.text("name", None)
    if not name:
        raise top.fail("name", "missing: give the scenario a name")
    for key in ("network", "events", "expect"):
        expected = dict if key == "network" else list
        if key in data and not isinstance(data[key], expected):
            raise top.fail(key, f"must be {'a [network] table' if key == 'network' else f'an array of [[{key}]] tables'}")
    network = _network(_Reader(data.get("network", {}), lines, source, "network"))
    events = tuple(_event(_Reader(e, lines, source, "events", i)) for i, e in enumerate(data.get("events", [])))
    scenario = Scenario(
        name=name, description=top.text("description", "") or "", timeout_s=top.number("timeout_s", 600.0, 10, 24 * 3600),
        network=network, events=tuple(sorted(events, key=_order)),
        expectations=tuple(_expectation(_Reader(x, lines, source, "expect", i)) for i, x in enumerate(data.get("expect", []))),
        source=source,
    )
    _check_references(scenario, data, lines)
    return scenario


def load_scenario(path: Path) -> Scenario:
    try:
        text = path.read_text()
    except OSError as e:
        raise ScenarioError(f"cannot read scenario {path}: {e.strerror}") from None
    return parse_scenario(text, str(path))


def _order(e: Event) -> tuple[int, float, int]:
    # Timed events first by time; epoch-triggered ones by epoch; file order breaks ties.
    return (0, e.at, e.line) if e.at is not None else (1, float(e.after_epoch or 0), e.line)


def _network(r: _Reader) -> NetworkSpec:
    r.known(tuple(NetworkSpec.__dataclass_fields__))
    d = NetworkSpec()
    byz = r.data.get("byzantine", [])
    if not isinstance(byz, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in byz):
        raise r.fail("byzantine", f"must be a list of peer indices, got {byz!r}")
    spec = NetworkSpec(
        peers=r.number("peers", d.peers, 1, 16, integer=True),
        validators=r.number("validators", d.validators, 0, 4, integer=True),
        data_contributors=r.number("data_contributors", d.data_contributors, 0, 8, integer=True),
        epochs=r.number("epochs", d.epochs, 1, 100000, integer=True),
        chain=r.choice("chain", d.chain, ("embedded", "anvil")),
        broker=r.choice("broker", d.broker, ("embedded", "off")),
        aggregator=r.choice("aggregator", d.aggregator, ("centered-clip", "trimmed-mean", "median", "mean")),
        byzantine=tuple(byz), attack=r.choice("attack", d.attack, ATTACKS),
        n_layer=r.number("n_layer", d.n_layer, 1, 48, integer=True),
        n_embd=r.number("n_embd", d.n_embd, 16, 4096, integer=True),
        batch_size=r.number("batch_size", d.batch_size, 1, 4096, integer=True),
        target_batch_size=r.number("target_batch_size", d.target_batch_size, 1, 10**7, integer=True),
        peer_wait_timeout=r.number("peer_wait_timeout", d.peer_wait_timeout, 5, 3600),
        receipt_p=r.number("receipt_p", d.receipt_p, 0.0, 1.0),
        lr=r.number("lr", d.lr, 1e-6, 1.0),
    )
    for i in spec.byzantine:
        if not 0 <= i < spec.peers:
            raise r.fail("byzantine", f"peer {i} does not exist: peers are 0..{spec.peers - 1}")
    return spec


def _event(r: _Reader) -> Event:
    r.known(("action", "at", "after_epoch", "peer", "attack", "duration", "kind", "of"))
    if "action" not in r.data:
        raise r.fail(None, f"missing action; one of {', '.join(ACTIONS)}")
    action = r.choice("action", None, ACTIONS)
    at = r.number("at", None, 0, 24 * 3600)
    after_epoch = r.number("after_epoch", None, 0, 100000, integer=True)
    if (at is None) == (after_epoch is None):
        raise r.fail("at" if at is not None else "action", "give exactly one of at = SECONDS (>= 0) or after_epoch = N")
    if action in SHARD_ACTIONS and at != 0:
        raise r.fail("at" if at is not None else "after_epoch",
                     "a shard is published before the peers start (they read the vetted shards at start): use at = 0")
    if action in PEER_ACTIONS and "peer" not in r.data:
        raise r.fail(None, f"{action} needs peer = INDEX")
    if action not in PEER_ACTIONS and "peer" in r.data:
        raise r.fail("peer", f"{action} takes no peer")
    if action == "byzantine" and "attack" not in r.data:
        raise r.fail(None, f"byzantine needs attack = one of {', '.join(ATTACKS)}")
    for key, allowed in (("attack", ("byzantine",)), ("duration", ("partition",)), ("kind", ("poisoned_shard",)),
                         ("of", ("duplicate_shard",))):
        if key in r.data and action not in allowed:
            raise r.fail(key, f"{action} takes no {key}")
    return Event(action=action, line=r.line, at=at, after_epoch=after_epoch,
                 peer=r.number("peer", None, 0, 63, integer=True), attack=r.choice("attack", None, ATTACKS),
                 duration=r.number("duration", None, 0.1, 3600), kind=r.choice("kind", "spam", POISONS),
                 of=r.number("of", 0, 0, 63, integer=True))


def _expectation(r: _Reader) -> Expectation:
    r.known(("check", "min", "max", "peer", "contributor", "verdict", "assigned"))
    if "check" not in r.data:
        raise r.fail(None, f"missing check; one of {', '.join(CHECKS)}")
    check = r.choice("check", None, CHECKS)
    lo, hi = r.number("min", None, -1e30, 1e30), r.number("max", None, -1e30, 1e30)
    if check == "shard":
        if "contributor" not in r.data or ("verdict" not in r.data and "assigned" not in r.data):
            raise r.fail(None, "a shard check needs contributor = INDEX and verdict and/or assigned")
    elif lo is None and hi is None:
        raise r.fail(None, f"a {check} check needs min and/or max")
    if lo is not None and hi is not None and lo > hi:
        raise r.fail("min", f"min {lo:g} is above max {hi:g}: nothing can pass")
    assigned = r.data.get("assigned")
    if assigned is not None and not isinstance(assigned, bool):
        raise r.fail("assigned", f"must be true or false, got {assigned!r}")
    for key, allowed in (("peer", ("receipts_rejected", "tokens")), ("contributor", ("tokens", "shard"))):
        if key in r.data and check not in allowed:
            raise r.fail(key, f"a {check} check takes no {key}")
    return Expectation(check=check, line=r.line, min=lo, max=hi, peer=r.number("peer", None, 0, 63, integer=True),
                       contributor=r.number("contributor", None, 0, 63, integer=True),
                       verdict=r.choice("verdict", None, ("pass", "review", "fail")), assigned=assigned)


def _check_references(s: Scenario, data: dict[str, Any], lines: _Lines) -> None:
    """Peers and contributors named by events and checks exist (when the event runs), capabilities are on."""
    peers = s.network.peers
    raw_events = data.get("events", [])
    by_line = {lines.of("events", i): i for i in range(len(raw_events))}
    for e in s.events:
        i = by_line.get(e.line, 0)
        r = _Reader(raw_events[i] if raw_events else {}, lines, s.source, "events", i)
        if e.action == "add_peer":
            peers += 1
        if e.peer is not None and e.peer >= peers:
            raise r.fail("peer", f"peer {e.peer} does not exist at this point: peers are 0..{peers - 1}"
                                 " (add_peer events before it add more)")
        if e.action.startswith("chain_") and (s.network.chain != "anvil" or s.network.validators == 0):
            raise r.fail("action", f"{e.action} needs [network] chain = \"anvil\" and validators >= 1")
        if e.action.startswith("broker_") and s.network.broker != "embedded":
            raise r.fail("action", f"{e.action} needs [network] broker = \"embedded\"")
        if e.action in SHARD_ACTIONS and s.network.data_contributors == 0:
            raise r.fail("action", f"{e.action} needs [network] data_contributors >= 1")
        if e.action == "duplicate_shard" and e.of >= s.network.data_contributors:
            raise r.fail("of", f"contributor {e.of} does not exist: contributors are 0..{s.network.data_contributors - 1}")
    for i, x in enumerate(s.expectations):
        r = _Reader(data["expect"][i], lines, s.source, "expect", i)
        if x.peer is not None and x.peer >= s.total_peers:
            raise r.fail("peer", f"peer {x.peer} does not exist: peers are 0..{s.total_peers - 1}")
        if x.contributor is not None and x.contributor >= s.total_contributors:
            raise r.fail("contributor", f"contributor {x.contributor} does not exist: "
                                        f"contributors are 0..{s.total_contributors - 1}")
        if x.check in ("receipts_rejected", "tokens") and s.network.validators == 0:
            raise r.fail("check", f"a {x.check} check needs [network] validators >= 1")
