"""Frozen configuration of a node's telemetry (MQTT) and its local status endpoint (HTTP)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from protocol.errors import ConfigError

DEFAULT_MQTT_PORT = 1883


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"


def parse_broker_url(url: str) -> BrokerAddress:
    """``mqtt://host[:port]`` -> BrokerAddress; ConfigError naming the URL otherwise."""
    parts = urlsplit(url)
    if parts.scheme != "mqtt" or not parts.hostname:
        raise ConfigError(f"broker URL {url!r} must look like mqtt://host:port (e.g. mqtt://127.0.0.1:1883)")
    try:
        port = parts.port or DEFAULT_MQTT_PORT
    except ValueError:
        raise ConfigError(f"broker URL {url!r} has an invalid port") from None
    return BrokerAddress(parts.hostname, port)


def parse_host_port(value: str) -> tuple[str, int]:
    """``host:port`` (port 0 picks a free one) -> (host, port); ConfigError otherwise."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ConfigError(f"address {value!r} must look like host:port, e.g. 127.0.0.1:8470")
    return host.strip("[]"), int(port)


@dataclass(frozen=True)
class TelemetryConfig:
    run_id: str  # topics live under hivenet/{run_id}/ so a dashboard can follow one run
    broker: BrokerAddress | None = BrokerAddress("127.0.0.1", DEFAULT_MQTT_PORT)  # None: telemetry off
    # The retained status is republished at most this often while training changes it every step;
    # a dashboard needs seconds, not milliseconds, and the broker should not see 100 msgs/s per peer.
    status_interval_s: float = 1.0
    # Republish the status at least this often even when nothing changed: a heartbeat for dashboards,
    # and the publish that notices a dead broker when training is quiet.
    heartbeat_s: float = 5.0
    # Reconnect backoff doubles from the first to the last value; the cap bounds how long a node
    # stays silent after its broker comes back (it must publish again within 10 s).
    initial_backoff_s: float = 0.5
    max_backoff_s: float = 4.0
    connect_timeout_s: float = 5.0  # one CONNECT (and each QoS 1 publish) may take this long
    queue_limit: int = 1000  # events kept while the broker is away; the oldest are dropped beyond it


@dataclass(frozen=True)
class HttpConfig:
    # Loopback by default: /status and /metrics describe this machine's node to this machine's user
    # (and a Prometheus agent here); exposing them further is an explicit choice. None: no endpoint.
    listen: tuple[str, int] | None = ("127.0.0.1", 8470)
    # Where the bound URL is written (useful with port 0: `hivenet status --file` reads it); removed on stop.
    url_file: Path | None = None
    # When the default port is taken (a second node on this machine), take any free port and say so,
    # rather than fail the start; a port the user chose is never swapped.
    fallback_to_any_port: bool = True
