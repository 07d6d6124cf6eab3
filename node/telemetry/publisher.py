"""Publishes a node's telemetry to an MQTT broker with aiomqtt, reconnecting with backoff.

aiomqtt, not asyncio-mqtt: it is the same project renamed and maintained;
asyncio-mqtt 0.16.2 breaks on paho-mqtt 2.x (``'Client' object has no attribute
'message_retry_set'``).

The publisher never blocks the node: the state hands it messages through
:meth:`TelemetryPublisher.notify`; while the broker is away they wait in a bounded
queue (oldest dropped first) and the latest status is kept aside and republished,
retained, on every (re)connection. A node without a broker warns once and trains on.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import time
from typing import Any

import aiomqtt

from node.telemetry import schema
from node.telemetry.config import TelemetryConfig
from node.telemetry.state import NodeState

log = logging.getLogger(__name__)

Message = tuple[str, bytes, bool]  # topic, payload, retain


class TelemetryPublisher:
    """Runs in the side-loop: ``await run()`` until cancelled, ``await flush()`` before stopping."""

    def __init__(self, cfg: TelemetryConfig, state: NodeState) -> None:
        assert cfg.broker is not None
        self.cfg = cfg
        self.broker = cfg.broker
        self.state = state
        self._queue: collections.deque[Message] = collections.deque(maxlen=cfg.queue_limit)
        self._status: dict[str, Any] | None = None
        self._status_dirty = False
        self._last_status_at = 0.0
        self._urgent = False  # stage changes go out at once, not at the next status interval
        self._wake = asyncio.Event()
        self._has_peer = asyncio.Event()
        self._warned = False
        self.connections = 0  # successful connections so far (tests, /status)
        self.published = 0
        self.dropped = 0
        state.listen(self.notify)

    # -- fed by NodeState (in the side-loop) -----------------------------------------------

    def notify(self, kind: str, payload: dict[str, Any]) -> None:
        run, peer = self.state.run_id, self.state.peer_id
        if kind == "status":
            urgent = self._status is None or payload.get("stage") != self._status.get("stage") \
                or payload.get("daemon_stage") != self._status.get("daemon_stage")
            self._status, self._status_dirty = payload, True
            self._urgent = self._urgent or urgent
        elif kind == "metrics":
            self._enqueue(schema.metrics_topic(run, peer), payload)
            if payload.get("event") == "epoch" and payload.get("new_epoch") is not None:
                self._enqueue(schema.epoch_topic(run, int(payload["new_epoch"])), payload)
        elif kind == "event":
            self._enqueue(schema.events_topic(run), {"peer_id": peer, "t": time.time(), **payload})
        if peer:
            self._has_peer.set()
        self._wake.set()

    def _enqueue(self, topic: str, payload: dict[str, Any]) -> None:
        if len(self._queue) == self._queue.maxlen:
            self.dropped += 1
        self._queue.append((topic, schema.encode(payload), False))

    # -- the connection loop ---------------------------------------------------------------

    async def run(self) -> None:
        await self._has_peer.wait()  # topics and the last will name the peer
        backoff = self.cfg.initial_backoff_s
        while True:
            try:
                await self._connected_session()
            except aiomqtt.MqttError as e:
                was_connected = self.state.telemetry_connected
                self.state.telemetry_connected = False
                if was_connected:
                    log.warning("telemetry: lost the MQTT broker at %s (%s); training goes on, reconnecting", self.broker.url, e)
                    backoff = self.cfg.initial_backoff_s
                elif not self._warned:
                    log.warning(
                        "telemetry: no MQTT broker at %s (%s); training goes on without it and telemetry retries in the "
                        'background (set telemetry.broker = "" or --broker "" to turn it off)', self.broker.url, e)
                else:
                    log.debug("telemetry: broker %s still unreachable (%s)", self.broker.url, e)
                self._warned = True
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.cfg.max_backoff_s)

    def _will(self) -> aiomqtt.Will:
        offline = {**(self._status or self.state.status()), "daemon_stage": "offline", "stage": "offline"}
        return aiomqtt.Will(schema.status_topic(self.state.run_id, self.state.peer_id), schema.encode(offline), qos=1, retain=True)

    async def _connected_session(self) -> None:
        client = aiomqtt.Client(
            self.broker.host, self.broker.port, identifier=f"hivenet-{self.state.peer_id[-12:]}-{os.getpid()}",
            will=self._will(), timeout=self.cfg.connect_timeout_s, keepalive=max(5, int(self.cfg.heartbeat_s * 3)),
        )
        async with client:
            self.connections += 1
            self.state.telemetry_connected = True
            log.info("telemetry: connected to %s (run %s, peer %s)", self.broker.url, self.state.run_id, self.state.peer_id)
            self._status_dirty = True  # retained status first: a restarted broker has forgotten it
            self._urgent = True
            while True:
                self._wake.clear()
                await self._drain(client)
                try:
                    async with asyncio.timeout(self._next_status_in()):
                        await self._wake.wait()
                except TimeoutError:
                    pass

    def _next_status_in(self) -> float:
        since = time.monotonic() - self._last_status_at
        if self._status_dirty:
            return max(0.0, self.cfg.status_interval_s - since)
        return max(0.0, self.cfg.heartbeat_s - since)

    async def _drain(self, client: aiomqtt.Client) -> None:
        since = time.monotonic() - self._last_status_at
        due = self._urgent or since >= self.cfg.heartbeat_s or (self._status_dirty and since >= self.cfg.status_interval_s)
        if due:
            status = self.state.status()
            await client.publish(schema.status_topic(self.state.run_id, self.state.peer_id), schema.encode(status),
                                 qos=1, retain=True)
            self._status, self._status_dirty, self._urgent = status, False, False
            self._last_status_at = time.monotonic()
            self.published += 1
        while self._queue:
            topic, payload, retain = self._queue[0]
            await client.publish(topic, payload, qos=1, retain=retain)
            self._queue.popleft()  # only once the broker acknowledged it
            self.published += 1

    async def flush(self, timeout: float) -> bool:
        """Wait until the queue is empty and the latest status is out; False on timeout or no broker."""
        if not self.state.telemetry_connected:
            return False
        self._urgent = True
        self._wake.set()
        try:
            async with asyncio.timeout(timeout):
                while self._queue or self._status_dirty or self._urgent:
                    if not self.state.telemetry_connected:
                        return False
                    await asyncio.sleep(0.02)
        except TimeoutError:
            return False
        return True
