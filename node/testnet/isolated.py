"""A testnet whose roles share nothing but a network: each role in its own namespace, with its own home.

    net = IsolatedTestnet(IsolatedConfig(run_dir=Path("runs/iso"), epochs=6))
    try:
        net.start()                         # chain, broker, operator, contributors, trainers, validator
        net.wait_trained(timeout=600)       # every trainer reached the run's last epoch and exited 0
        net.wait_final(timeout=300)         # the validator settled every epoch and the last root is final
        net.claim_all()                     # each account claims from its own namespace
    finally:
        net.stop()                          # every process killed, every namespace removed

Each role runs the documented commands (docs/run.md), and nothing else, as a newcomer would on a machine
of their own (``node.testnet.netns``: a namespace and an address on one bridge; a home directory that
is its working directory and $HOME):

- chain: anvil; broker: mosquitto (the embedded broker where mosquitto is missing)
- operator: ``keys new``, ``ledger deploy``, ``ledger fund``, ``ledger grant-validator``, ``ledger faucet``,
  ``run create --publish``
- contributorN: ``keys new``, ``shard add``, ``shard register``, ``shard serve --run-id``
- trainerN: ``keys new``, ``node start --run-id R --manifest-from-dht --fetch-shards``
- validator: ``keys new``, ``validator start --run-id R --manifest-from-dht --fetch-shards``
- every account: ``rewards claim --run-id R`` with its keystore, the RPC URL and a peer address

The supervisor (this process, in the root namespace, which has no route to the bridge) starts the
commands, reads what they print and what they write in their own homes (to report and check), and
passes between roles only what is public: addresses, multiaddrs, and the operator's deployment file
(the one file an operator publishes). Every command line and environment is recorded in
``commands.jsonl`` so a test can show that none names a path of another role's home.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from node.testnet.netns import Host, NetnsLab
from protocol.errors import HivenetError

REPO = Path(__file__).resolve().parents[2]
ANVIL = REPO / "contracts" / "node_modules" / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil"
RPC_PORT, MQTT_PORT, P2P_PORT, STATUS_PORT = 8545, 1883, 4001, 8470
TOKEN = 10**18


class IsolatedError(HivenetError, RuntimeError):
    """A role's command failed; the message names the role, the command and the tail of its output."""


@dataclass(frozen=True)
class IsolatedConfig:
    run_dir: Path
    run_id: str = "isolated"
    tag: str = ""  # namespace names' tag (default: from the run dir, so a rerun cleans its own leftovers)
    trainers: int = 3
    contributors: int = 2
    epochs: int = 6
    n_layer: int = 2
    n_embd: int = 64
    target_batch_size: int = 96
    batch_size: int = 16
    receipt_p: float = 1.0
    compute_bps: int = 7000
    pool_tokens: int = 100_000  # whole tokens the operator funds the pool with
    challenge_window_s: int = 4  # short: the run's last root must be final before the claims
    settle_quiet_s: float = 8.0  # the validator settles an epoch nobody adds receipts to for this long
    peer_wait_timeout: float = 240.0


@dataclass
class Role:
    name: str
    host: Host
    home: Path
    address: str = ""  # its Ethereum account (lower case), once it has a keystore
    proc: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        return self.home / "out.txt"


@dataclass
class Accounts:
    operator: str = ""
    validator: str = ""
    trainers: list[str] = field(default_factory=list)
    contributors: list[str] = field(default_factory=list)


def tag_for(run_dir: Path) -> str:
    import hashlib

    return hashlib.sha256(str(run_dir.resolve()).encode()).hexdigest()[:6]


class IsolatedTestnet:
    def __init__(self, cfg: IsolatedConfig, log: Any = print) -> None:
        self.cfg, self.say = cfg, log
        self.lab = NetnsLab(cfg.tag or tag_for(cfg.run_dir))
        self.roles: dict[str, Role] = {}
        self.bootstrap = ""
        self.deployment: dict[str, Any] = {}
        self.accounts = Accounts()
        self.started_at = 0.0

    # -- plumbing -----------------------------------------------------------------------

    @property
    def rpc_url(self) -> str:
        return f"http://{self.roles['chain'].host.address}:{RPC_PORT}"

    @property
    def broker_url(self) -> str:
        return f"mqtt://{self.roles['broker'].host.address}:{MQTT_PORT}"

    def trainers(self) -> list[Role]:
        return [self.roles[f"trainer{i}"] for i in range(self.cfg.trainers)]

    def contributors(self) -> list[Role]:
        return [self.roles[f"contributor{i}"] for i in range(self.cfg.contributors)]

    def _env(self, role: Role) -> dict[str, str]:
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(role.home), "LANG": "C.UTF-8",
                "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

    def _note(self, role: Role, argv: list[str]) -> None:
        with open(self.cfg.run_dir / "commands.jsonl", "a") as f:
            f.write(json.dumps({"role": role.name, "home": str(role.home), "argv": argv, "env": self._env(role)}) + "\n")

    def hivenet(self, role: Role, *args: str, timeout: float = 180.0) -> str:
        """Runs ``hivenet ARGS`` as ``role`` to completion; its stdout, or IsolatedError with its output."""
        argv = [sys.executable, "-m", "node.cli", *args]
        self._note(role, argv)
        began = time.monotonic()
        out = self.lab.run(role.host, argv, self._env(role), role.home, timeout=timeout)
        took = time.monotonic() - began
        with open(role.log, "a") as f:
            f.write(f"$ hivenet {' '.join(args)}   # {took:.1f} s, exit {out.returncode}\n{out.stdout}{out.stderr}")
        if out.returncode != 0:
            raise IsolatedError(f"{role.name}: `hivenet {' '.join(args)}` exited {out.returncode}: "
                                f"{(out.stderr or out.stdout).strip()[-1500:]}")
        return out.stdout

    def spawn(self, role: Role, argv: list[str]) -> None:
        """Starts ``role``'s long-running command (a daemon) in its namespace."""
        self._note(role, argv)
        role.proc = self.lab.popen(role.host, argv, self._env(role), role.home, role.log)

    def wait_port(self, role: Role, target: Role, port: int, timeout: float = 60.0) -> None:
        """Waits, from ``role``'s namespace, until ``target`` accepts TCP connections on ``port``."""
        code = ("import socket, sys, time\nend = time.monotonic() + float(sys.argv[3])\nwhile True:\n"
                "    try:\n        socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1).close(); break\n"
                "    except OSError:\n        time.sleep(0.1)\n        if time.monotonic() > end: sys.exit(1)\n")
        out = self.lab.run(role.host, [sys.executable, "-c", code, target.host.address, str(port), str(timeout)],
                           self._env(role), role.home, timeout=timeout + 10)
        if out.returncode != 0:
            raise IsolatedError(f"{target.name} did not accept connections on port {port} within {timeout:g} s; "
                                f"see {target.log}")

    def _role(self, name: str) -> Role:
        home = self.cfg.run_dir / name
        home.mkdir(parents=True, exist_ok=True)
        role = Role(name, self.lab.add_host(name), home.resolve())
        self.roles[name] = role
        return role

    # -- start --------------------------------------------------------------------------

    def start(self) -> None:
        self.cfg.run_dir.mkdir(parents=True, exist_ok=True)
        (self.cfg.run_dir / "commands.jsonl").write_text("")
        self.started_at = time.time()
        self.lab.open()
        if self.lab.cleaned:
            self.say(f"removed {len(self.lab.cleaned)} namespace(s) an earlier run left: {', '.join(self.lab.cleaned)}")
        names = ["chain", "broker", "operator", *(f"contributor{i}" for i in range(self.cfg.contributors)),
                 *(f"trainer{i}" for i in range(self.cfg.trainers)), "validator"]
        for name in names:
            self._role(name)
        self._start_services()
        self._make_keys()
        self._open_ledger()
        self._contribute()
        self._create_run()
        # The validator first: it fetches each snapshot as soon as a receipt names it, while the trainers that
        # hold it still run (a trainer stops serving when it leaves at the run's last epoch).
        self._start_validator()
        self._wait_log(self.roles["validator"], "validator.log", "joined run", timeout=self.cfg.peer_wait_timeout)
        for t in self.trainers():
            self._start_trainer(t)
        self.say(f"isolated testnet up: {len(self.roles)} namespaces, run {self.cfg.run_id}, bootstrap {self.bootstrap}")

    def _start_services(self) -> None:
        chain, broker, operator = self.roles["chain"], self.roles["broker"], self.roles["operator"]
        if not ANVIL.exists():
            raise IsolatedError(f"{ANVIL} missing: run `npm ci` in contracts/ (scripts/test-services.sh does)")
        # a block every second: the chain's clock moves on when nobody sends anything, so the last root's
        # challenge window passes (an automining anvil would keep the time of the last transaction)
        self.spawn(chain, [str(ANVIL), "--host", "0.0.0.0", "--port", str(RPC_PORT), "--silent", "--block-time", "1"])
        mosquitto = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
        if mosquitto:
            conf = broker.home / "mosquitto.conf"
            conf.write_text(f"listener {MQTT_PORT} 0.0.0.0\nallow_anonymous true\npersistence false\n")
            self.spawn(broker, [mosquitto, "-c", str(conf)])
        else:
            self.spawn(broker, [sys.executable, "-c", "import time; from node.telemetry.broker import EmbeddedBroker; "
                                f"EmbeddedBroker('0.0.0.0', {MQTT_PORT}).start(); time.sleep(1e9)"])
        self.wait_port(operator, chain, RPC_PORT)
        self.wait_port(operator, broker, MQTT_PORT)

    def _make_keys(self) -> None:
        """A keystore and a generated password in each account's own home (never written anywhere else)."""
        accounts = [r for r in self.roles.values() if r.name not in ("chain", "broker")]
        procs = []
        for role in accounts:
            (role.home / "node.pass").write_text(secrets.token_urlsafe(18) + "\n")
            os.chmod(role.home / "node.pass", 0o600)
            argv = [sys.executable, "-m", "node.cli", "keys", "new", "--keystore", "node.key", "--password-file",
                    "node.pass", "--json"]
            self._note(role, argv)
            procs.append((role, subprocess.Popen(self.lab.command(role.host, argv), cwd=role.home, env=self._env(role),
                                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)))
        for role, proc in procs:
            out, err = proc.communicate(timeout=120)
            if proc.returncode != 0:
                raise IsolatedError(f"{role.name}: `hivenet keys new` exited {proc.returncode}: {err.strip()[-800:]}")
            role.address = json.loads(out)["address"].lower()
        self.accounts = Accounts(self.roles["operator"].address, self.roles["validator"].address,
                                 [t.address for t in self.trainers()], [c.address for c in self.contributors()])

    def _open_ledger(self) -> None:
        op, rpc = self.roles["operator"], self.rpc_url
        keys = ("--keystore", "node.key", "--password-file", "node.pass")
        self.hivenet(op, "ledger", "deploy", "--rpc", rpc, *keys, "--dev-fund", "--challenge-window",
                     str(self.cfg.challenge_window_s), "--deployment", "deployment.json")
        self.deployment = json.loads((op.home / "deployment.json").read_text())
        self.hivenet(op, "ledger", "fund", "--rpc", rpc, *keys, "--amount", str(self.cfg.pool_tokens))
        self.hivenet(op, "ledger", "grant-validator", "--rpc", rpc, *keys, "--address", self.accounts.validator)
        gas = [a for r in self.roles.values() if r.address and r.name != "operator" for a in ("--to", r.address)]
        self.hivenet(op, "ledger", "faucet", "--rpc", rpc, *gas, "--eth", "10")
        for role in (*self.contributors(), self.roles["validator"]):  # what an operator publishes: its deployment
            shutil.copy(op.home / "deployment.json", role.home / "deployment.json")

    def _contribute(self) -> None:
        from node.data.vetted import split_text
        from node.train.data import demo_corpus

        texts = split_text(demo_corpus().train, self.cfg.contributors)
        keys = ("--keystore", "node.key", "--password-file", "node.pass")
        for role, text in zip(self.contributors(), texts):
            (role.home / "contribution.txt").write_bytes(text)  # the contributor's own data
            self.hivenet(role, "shard", "add", "contribution.txt", "--store", "shards", "--license", "CC-BY-4.0",
                         "--owner", role.address, "--json")
            self.hivenet(role, "shard", "register", "--store", "shards", "--rpc", self.rpc_url, *keys)
            serve = [sys.executable, "-m", "node.cli", "shard", "serve", "--run-id", self.cfg.run_id, "--store", "shards",
                     "--listen", f"/ip4/{role.host.address}/tcp/{P2P_PORT}", "--json", "--status-every", "10"]
            self.spawn(role, serve + (["--initial-peers", self.bootstrap] if self.bootstrap else []))
            event = self._wait_event(role, "serving", timeout=120)
            if not self.bootstrap:
                self.bootstrap = next(a for a in event["maddrs"] if f"/ip4/{role.host.address}/" in a)

    def _wait_event(self, role: Role, name: str, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in role.log.read_text(errors="replace").splitlines():
                if line.startswith("{") and f'"event": "{name}"' in line:
                    return dict(json.loads(line))
            if role.proc is not None and role.proc.poll() is not None:
                raise IsolatedError(f"{role.name} exited {role.proc.returncode}: {self.tail(role)}")
            time.sleep(0.3)
        raise IsolatedError(f"{role.name} printed no {name!r} event within {timeout:g} s: {self.tail(role)}")

    def _wait_log(self, role: Role, name: str, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        path = role.home / name
        while time.monotonic() < deadline:
            if path.exists() and text in path.read_text(errors="replace"):
                return
            if role.proc is not None and role.proc.poll() is not None:
                raise IsolatedError(f"{role.name} exited {role.proc.returncode}: {self.tail(role)}")
            time.sleep(0.5)
        raise IsolatedError(f"{role.name} did not log {text!r} within {timeout:g} s: {self.tail(role)}")

    def _create_run(self) -> None:
        c, op = self.cfg, self.roles["operator"]
        self.hivenet(op, "run", "create", "--run-id", c.run_id, "--out", "run.json", "--keystore", "node.key",
                     "--password-file", "node.pass", "--publish", "--initial-peers", self.bootstrap, "--corpus", "vetted",
                     "--n-layer", str(c.n_layer), "--n-embd", str(c.n_embd), "--target-batch-size", str(c.target_batch_size),
                     "--batch-size", str(c.batch_size), "--max-epochs", str(c.epochs), "--receipt-probability",
                     str(c.receipt_p), "--compute-bps", str(c.compute_bps), "--chain-id", str(self.deployment["chain_id"]),
                     "--ledger", self.deployment["ledger"].lower(), "--json")

    def _joining(self) -> list[str]:
        return ["--run-id", self.cfg.run_id, "--manifest-from-dht", "--manifest-creator", self.accounts.operator,
                "--fetch-shards", "--shard-store", "shards", "--initial-peers", self.bootstrap,
                "--broker", self.broker_url]

    def _start_trainer(self, role: Role) -> None:
        a = role.host.address
        self.spawn(role, [
            sys.executable, "-m", "node.cli", "node", "start", *self._joining(),
            "--listen", f"/ip4/{a}/tcp/{P2P_PORT}", "--identity", "identity.key", "--keystore", "node.key",
            "--password-file", "node.pass", "--snapshot-dir", "snapshots", "--expected-peers", str(self.cfg.trainers),
            "--peer-wait-timeout", str(self.cfg.peer_wait_timeout), "--device", "cpu", "--status-listen", f"{a}:{STATUS_PORT}",
            "--status-url-file", "status.url", "--metrics", "metrics.jsonl", "--checkpoint", "checkpoint.pt",
            "--log-file", "node.log", "--no-progress", *(["--eval-every", "0"] if role.name != "trainer0" else [])])

    def _start_validator(self) -> None:
        role = self.roles["validator"]
        a = role.host.address
        self.spawn(role, [
            sys.executable, "-m", "node.cli", "validator", "start", *self._joining(),
            "--listen", f"/ip4/{a}/tcp/{P2P_PORT}", "--rpc-url", self.rpc_url, "--deployment", "deployment.json",
            "--validator-keystore", "node.key", "--validator-password-file", "node.pass", "--validator-home", "home",
            "--validator-poll-interval", "1", "--validator-settle-quiet", str(self.cfg.settle_quiet_s),
            "--status-listen", f"{a}:{STATUS_PORT + 1}", "--status-url-file", "status.url", "--log-file", "validator.log"])

    # -- progress -----------------------------------------------------------------------

    def tail(self, role: Role, chars: int = 1500) -> str:
        texts = [p.read_text(errors="replace") for p in (role.home / "node.log", role.home / "validator.log", role.log)
                 if p.exists()]
        return "\n".join(t[-chars:] for t in texts)

    def failed(self) -> list[str]:
        """Daemons that exited with an error (a trainer's exit 0 at the run's end is no failure)."""
        out = []
        for r in self.roles.values():
            code = r.proc.poll() if r.proc is not None else None
            if code not in (None, 0):
                out.append(r.name)
        return out

    def _check(self) -> None:
        bad = self.failed()
        if bad:
            raise IsolatedError("; ".join(f"{n} exited {self.roles[n].proc.returncode}: {self.tail(self.roles[n])}"  # type: ignore[union-attr]
                                          for n in bad))

    def wait_trained(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check()
            if all(t.proc is not None and t.proc.poll() == 0 for t in self.trainers()):
                return
            time.sleep(1.0)
        raise IsolatedError(f"the trainers did not finish within {timeout:g} s")

    def journal(self) -> dict[str, Any]:
        try:
            return dict(json.loads((self.roles["validator"].home / "home" / "journal.json").read_text()))
        except (OSError, ValueError):
            return {"settled": [], "next_epoch": 0}

    def ledger_status(self) -> dict[str, Any]:
        return dict(json.loads(self.hivenet(self.roles["operator"], "ledger", "status", "--rpc", self.rpc_url,
                                            "--deployment", "deployment.json", "--json")))

    def wait_final(self, timeout: float) -> dict[str, Any]:
        """Until the validator settled every epoch of the run and the chain finalized the last root."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check()
            j = self.journal()
            if j["next_epoch"] >= self.cfg.epochs and j["settled"]:
                last = max(s["ledger_epoch"] for s in j["settled"])
                status = self.ledger_status()
                if status["final_epoch"] >= last:
                    return status
            time.sleep(1.0)
        raise IsolatedError(f"not every epoch settled and final within {timeout:g} s: journal {self.journal()}")

    # -- claims -------------------------------------------------------------------------

    def claim_all(self) -> dict[str, dict[str, Any]]:
        """Each trainer and contributor claims from its own namespace with its keystore, the RPC URL and the run id."""
        out = {}
        for role in (*self.trainers(), *self.contributors()):
            args = ("--run-id", self.cfg.run_id, "--rpc-url", self.rpc_url, "--initial-peers", self.bootstrap,
                    "--keystore", "node.key")
            self.hivenet(role, "rewards", "claim", *args, "--password-file", "node.pass")
            out[role.name] = json.loads(self.hivenet(role, "rewards", "show", *args, "--json").strip().splitlines()[-1])
        return out

    def balances(self) -> dict[str, int]:
        """Token balance of every account, read on chain from the operator's namespace."""
        code = ("import json, sys; from eth_account import Account; from node.ledger.client import LedgerClient; "
                "from node.ledger.config import LedgerConfig; from node.ledger.deployment import Deployment; "
                "c = LedgerClient.open(LedgerConfig(rpc_url=sys.argv[1]), Account.create(), Deployment.load('deployment.json')); "
                "print(json.dumps({a: c.token_balance(a) for a in sys.argv[2:]}))")
        op = self.roles["operator"]
        names = {r.address: r.name for r in self.roles.values() if r.address}
        argv = [sys.executable, "-c", code, self.rpc_url, *names]
        out = self.lab.run(op.host, argv, self._env(op), op.home, timeout=120)
        if out.returncode != 0:
            raise IsolatedError(f"reading balances failed: {out.stderr.strip()[-800:]}")
        return {names[a]: int(v) for a, v in json.loads(out.stdout).items()}

    # -- stop ---------------------------------------------------------------------------

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM every daemon (graceful), SIGKILL what is left, remove every namespace."""
        live = [r for r in self.roles.values() if r.proc is not None and r.proc.poll() is None]
        for r in live:
            r.proc.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
        deadline = time.monotonic() + timeout
        for r in live:
            try:
                r.proc.wait(timeout=max(0.1, deadline - time.monotonic()))  # type: ignore[union-attr]
            except subprocess.TimeoutExpired:
                pass
        self.lab.close()
        for r in live:
            try:
                r.proc.wait(timeout=10)  # type: ignore[union-attr]
            except subprocess.TimeoutExpired:
                pass
