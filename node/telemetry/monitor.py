"""The data layer of ``hivenet monitor``: subscribe to a run's telemetry and keep one row per peer.

    state = MonitorState()
    await watch(parse_broker_url("mqtt://127.0.0.1:1883"), "demo", state)   # until cancelled

``watch`` reconnects with backoff like the publisher does; ``MonitorState`` is plain data
that a table (the CLI) or a test reads.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import aiomqtt

from node.telemetry import schema
from node.telemetry.config import BrokerAddress

log = logging.getLogger(__name__)


@dataclass
class PeerRow:
    run_id: str
    peer_id: str
    first_seen: float  # wall-clock time this monitor first heard of the peer
    last_seen: float
    status: dict[str, Any] = field(default_factory=dict)  # the latest retained status payload
    last_epoch: dict[str, Any] | None = None  # the latest epoch record

    @property
    def stage(self) -> str:
        return str(self.status.get("stage", "?"))

    def get(self, name: str) -> Any:
        return self.status.get(name)


class MonitorState:
    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], PeerRow] = {}
        self.messages = 0
        self.connected = False
        self.error: str | None = None

    def apply(self, topic: str, raw: bytes, now: float | None = None) -> schema.Parsed | None:
        """Fold one message in; returns what it was, None for messages that are not telemetry."""
        msg = schema.parse(topic, raw)
        if msg is None or not msg.peer_id:
            return msg
        now = time.time() if now is None else now
        self.messages += 1
        key = (msg.run_id, msg.peer_id)
        row = self.rows.get(key)
        if row is None:
            row = self.rows[key] = PeerRow(msg.run_id, msg.peer_id, first_seen=now, last_seen=now)
        row.last_seen = now
        if msg.kind == "status":
            row.status = msg.payload
        elif msg.kind == "metrics" and msg.payload.get("event") == "epoch":
            row.last_epoch = msg.payload
        return msg

    def peers(self, run_id: str | None = None) -> list[PeerRow]:
        return sorted((r for r in self.rows.values() if run_id in (None, r.run_id)), key=lambda r: (r.run_id, r.first_seen))


async def watch(broker: BrokerAddress, run_id: str | None, state: MonitorState,
                initial_backoff_s: float = 0.2, max_backoff_s: float = 4.0) -> None:
    """Subscribe and fold messages into ``state`` until cancelled, reconnecting when the broker goes away."""
    backoff = initial_backoff_s
    while True:
        try:
            async with aiomqtt.Client(broker.host, broker.port, timeout=5.0) as client:
                await client.subscribe(schema.subscription(run_id), qos=1)
                state.connected, state.error, backoff = True, None, initial_backoff_s
                async for message in client.messages:
                    payload = message.payload if isinstance(message.payload, bytes) else str(message.payload).encode()
                    state.apply(str(message.topic), payload)
        except aiomqtt.MqttError as e:
            state.connected, state.error = False, f"broker {broker.url}: {e}"
            log.debug("monitor: %s; retrying in %.1f s", state.error, backoff)
        await asyncio.sleep(backoff)
        backoff = min(backoff * 2, max_backoff_s)
