"""The node's local HTTP endpoint: ``/status`` (JSON) and ``/metrics`` (Prometheus text format).

    curl -s http://127.0.0.1:8470/status | jq .stage
    curl -s http://127.0.0.1:8470/metrics

A few dozen lines of asyncio.start_server instead of a web framework: two read-only GET
routes on loopback, served from the side-loop, need nothing more.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from prometheus_client import CollectorRegistry, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from node.telemetry import schema
from node.telemetry.config import HttpConfig
from node.telemetry.state import DaemonStage, NodeState
from protocol.errors import ConfigError

log = logging.getLogger(__name__)


class NodeMetrics:
    """Prometheus gauges filled from the NodeState at scrape time (one registry per node)."""

    def __init__(self, state: NodeState) -> None:
        self.state = state
        self.registry = CollectorRegistry()
        labels = ["run_id", "peer_id"]
        g = lambda name, doc: Gauge(name, doc, labels, registry=self.registry)  # noqa: E731
        self.epoch = g("hivenet_epoch", "Collaborative epoch the peer is in.")
        self.local_steps = g("hivenet_local_steps", "Local steps in the current epoch.")
        self.loss = g("hivenet_loss", "Latest local training loss (nats per byte).")
        self.val_loss = g("hivenet_val_loss", "Latest held-out loss (nats per byte).")
        self.peers = g("hivenet_swarm_peers", "Peers of the run the progress tracker sees.")
        self.samples = g("hivenet_samples_per_second", "Local samples per second over the last epoch.")
        self.rounds = g("hivenet_averaging_rounds", "Averaging rounds this peer took part in.")
        self.bytes_sent = g("hivenet_averaging_bytes_sent", "Bytes this peer sent for averaging (DiLoCo mode).")
        self.bytes_received = g("hivenet_averaging_bytes_received", "Bytes this peer received for averaging (DiLoCo mode).")
        self.utilization = g("hivenet_compute_utilization", "Share of training wall time spent computing (DiLoCo mode).")
        self.uptime = g("hivenet_uptime_seconds", "Seconds since the node started.")
        self.connected = g("hivenet_telemetry_connected", "1 while the MQTT broker is connected.")
        self.stage = Gauge("hivenet_stage", "1 for the daemon's current stage.", [*labels, "stage"], registry=self.registry)

    def render(self) -> bytes:
        s = self.state.status()
        lab = {"run_id": s["run_id"], "peer_id": s["peer_id"]}
        nan = float("nan")
        self.epoch.labels(**lab).set(s["epoch"])
        self.local_steps.labels(**lab).set(s["local_steps"])
        self.loss.labels(**lab).set(nan if s["loss"] is None else s["loss"])
        self.val_loss.labels(**lab).set(nan if s["val_loss"] is None else s["val_loss"])
        self.peers.labels(**lab).set(s["peers"])
        self.samples.labels(**lab).set(s["samples_per_s"])
        self.rounds.labels(**lab).set(s["rounds"])
        self.bytes_sent.labels(**lab).set(s["averaging_bytes_sent"])
        self.bytes_received.labels(**lab).set(s["averaging_bytes_received"])
        self.utilization.labels(**lab).set(nan if s["utilization"] is None else s["utilization"])
        self.uptime.labels(**lab).set(s["uptime_s"])
        self.connected.labels(**lab).set(int(s["telemetry_connected"]))
        for stage in DaemonStage:
            self.stage.labels(**lab, stage=stage.value).set(int(stage.value == s["daemon_stage"]))
        return generate_latest(self.registry)


class StatusServer:
    """``await start()`` binds (errors name the address), ``await close()`` stops and removes the URL file."""

    def __init__(self, cfg: HttpConfig, state: NodeState) -> None:
        assert cfg.listen is not None
        self.cfg = cfg
        self.state = state
        self.metrics = NodeMetrics(state)
        self.url = ""
        self._server: asyncio.Server | None = None

    async def start(self) -> str:
        host, port = self.cfg.listen  # type: ignore[misc]
        try:
            self._server = await asyncio.start_server(self._handle, host, port)
        except OSError as e:
            if self.cfg.fallback_to_any_port and port != 0:
                log.warning("status endpoint: %s:%d is taken (%s); using any free port instead", host, port, e.strerror)
                self._server = await asyncio.start_server(self._handle, host, 0)
            else:
                raise self._taken(host, port, e) from None
        bound = self._server.sockets[0].getsockname()
        self.url = f"http://{bound[0]}:{bound[1]}"
        if self.cfg.url_file is not None:
            self.cfg.url_file.parent.mkdir(parents=True, exist_ok=True)
            self.cfg.url_file.write_text(self.url + "\n")
        log.info("status endpoint on %s/status and %s/metrics", self.url, self.url)
        return self.url

    @staticmethod
    def _taken(host: str, port: int, e: OSError) -> ConfigError:
        return ConfigError(
            f"status endpoint: cannot listen on {host}:{port} ({e.strerror}); another node may use it: "
            'set status.listen (--status-listen) to another port, 127.0.0.1:0 for any, or "" to turn it off'
        )

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        if self.cfg.url_file is not None:
            self.cfg.url_file.unlink(missing_ok=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(5):
                request = await reader.readuntil(b"\r\n\r\n")
            method, _, rest = request.decode("latin-1").partition(" ")
            path = rest.split(" ", 1)[0].split("?", 1)[0]
            if method != "GET":
                code, ctype, body = "405 Method Not Allowed", "text/plain", b"GET only\n"
            elif path == "/status":
                code, ctype, body = "200 OK", "application/json", schema.encode(self.state.status())
            elif path == "/metrics":
                code, ctype, body = "200 OK", CONTENT_TYPE_LATEST, self.metrics.render()
            else:
                code, ctype, body = "404 Not Found", "text/plain", b"try /status or /metrics\n"
            head = f"HTTP/1.1 {code}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            writer.write(head.encode() + body)
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass  # a client that hangs up or never finishes its request gets nothing
        finally:
            writer.close()


def read_url_file(path: Path) -> str:
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        raise ConfigError(f"no status URL file at {path}; is the node running with status.url_file set?") from None
