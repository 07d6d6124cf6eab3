"""An in-process MQTT broker (amqtt) for a local testnet and tests: no service to install.

    with EmbeddedBroker() as broker:       # a free loopback port
        print(broker.url)                  # mqtt://127.0.0.1:PORT -> give it to peers as --broker

It runs in its own thread and event loop, so a synchronous supervisor (the testnet) can
own it. For anything long-lived or shared, use mosquitto (see README "Running a node").
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from typing import Any

from node.telemetry.config import BrokerAddress

log = logging.getLogger(__name__)


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class EmbeddedBroker:
    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.address = BrokerAddress(host, port or _free_port(host))
        self._thread = threading.Thread(target=self._main, name="hivenet-broker", daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        return self.address.url

    def __enter__(self) -> EmbeddedBroker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, timeout: float = 10.0) -> None:
        for name in ("amqtt", "transitions"):  # per-connection INFO lines would drown the testnet's own log
            logging.getLogger(name).setLevel(logging.WARNING)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError(f"the embedded MQTT broker did not start within {timeout} s")
        if self._error is not None:
            raise self._error

    def stop(self, timeout: float = 10.0) -> None:
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            try:
                self._loop.call_soon_threadsafe(self._stop.set)
            except RuntimeError:
                pass
        self._thread.join(timeout)

    def _main(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        from amqtt.broker import Broker

        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        config: dict[str, Any] = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.address.host}:{self.address.port}"}},
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
        }
        broker = Broker(config)
        try:
            await broker.start()
        except BaseException as e:
            self._error = e
            self._ready.set()
            return
        self._ready.set()
        log.info("embedded MQTT broker on %s", self.url)
        try:
            await self._stop.wait()
        finally:
            # Stop listening first: amqtt closes its listeners only after every session's handler stopped, and a
            # handler can hang, which would keep the port bound past the shutdown timeout so that a broker
            # restarted on that port could not start. amqtt offers no public way to this.
            for server in getattr(broker, "_servers", {}).values():
                if getattr(server, "instance", None) is not None:
                    server.instance.close()
            try:
                async with asyncio.timeout(5):
                    await broker.shutdown()
            except TimeoutError:
                log.warning("embedded MQTT broker on %s: shutdown took over 5 s; its sessions were dropped", self.url)
