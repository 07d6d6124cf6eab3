#!/usr/bin/env python3
"""What the compose roles need besides `hivenet` itself: reading what another role publishes over HTTP.

Installed in the image as ``compose-helper`` (docker/Dockerfile); docker/compose.yml calls it:

    compose-helper fetch http://operator:8000/deployment.json /data/deployment.json   # wait, verify, then write
    compose-helper bootstrap http://contributor1:8000/serve.jsonl contributor1 31337  # -> /ip4/IP/tcp/31337/p2p/ID
    compose-helper demo-text 0 2 /data/contribution.txt                               # contributor 0 of 2's data
    compose-helper field /data/deployment.json ledger                                 # one key of a JSON file

No role reads another's disk: each publishes what the others need from its own volume over HTTP
(``python -m http.server``), and this fetches it into the reader's own volume. What arrives is checked for its
form (JSON where JSON is expected) and written atomically; a bad answer is one ``error:`` line, exit 1.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

MAX_BYTES = 1 << 20  # what any published file may weigh


def _get(url: str, timeout: float) -> bytes:
    """The body of ``url`` once it answers 200 (retried every second until ``timeout``)."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                body = r.read(MAX_BYTES + 1)
                if len(body) > MAX_BYTES:
                    raise SystemExit(f"error: {url} is over {MAX_BYTES} bytes; check what the role publishes")
                return body
        except (urllib.error.URLError, OSError) as e:
            last = str(e)
        time.sleep(1.0)
    raise SystemExit(f"error: {url} did not answer within {timeout:g} s ({last}); start that role first")


def fetch(url: str, out: Path, timeout: float) -> None:
    body = _get(url, timeout)
    if out.suffix == ".json":
        try:
            json.loads(body)
        except ValueError as e:
            raise SystemExit(f"error: {url} is not JSON ({e}); check the role that serves it") from None
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_bytes(body)
    os.replace(tmp, out)


def bootstrap(url: str, host: str, port: int, timeout: float) -> str:
    """The multiaddr of the ``shard serve`` whose --json events ``url`` serves, reached at ``host``:``port``."""
    deadline = time.monotonic() + timeout
    while True:
        for line in _get(url, max(1.0, deadline - time.monotonic())).decode(errors="replace").splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            peer_id = event.get("peer_id") if isinstance(event, dict) and event.get("event") == "serving" else None
            if isinstance(peer_id, str) and peer_id.isalnum():
                return f"/ip4/{socket.gethostbyname(host)}/tcp/{port}/p2p/{peer_id}"
        if time.monotonic() > deadline:
            raise SystemExit(f"error: {url} names no serving peer within {timeout:g} s; see that role's log")
        time.sleep(1.0)


def demo_text(index: int, parts: int, out: Path) -> None:
    from node.data.vetted import split_text
    from node.train.data import demo_corpus

    out.write_bytes(split_text(demo_corpus().train, parts)[index])


def field(path: Path, key: str) -> str:
    try:
        value = json.loads(path.read_text()).get(key)
    except (OSError, ValueError, AttributeError) as e:
        raise SystemExit(f"error: {path} is not a JSON object ({e}); fetch it again") from None
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        raise SystemExit(f"error: {path} has no {key!r} string or number; fetch it again from its role")
    return str(value)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="compose-helper", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fetch", help="wait for URL, then write its body to OUT")
    f.add_argument("url")
    f.add_argument("out", type=Path)
    f.add_argument("--timeout", type=float, default=900.0)
    b = sub.add_parser("bootstrap", help="print the multiaddr of a `shard serve --json` peer")
    b.add_argument("url")
    b.add_argument("host")
    b.add_argument("port", type=int)
    b.add_argument("--timeout", type=float, default=900.0)
    d = sub.add_parser("demo-text", help="write part INDEX of PARTS of the demo corpus (a contributor's data)")
    d.add_argument("index", type=int)
    d.add_argument("parts", type=int)
    d.add_argument("out", type=Path)
    k = sub.add_parser("field", help="print one key (a string or number) of a JSON file")
    k.add_argument("file", type=Path)
    k.add_argument("key")
    a = p.parse_args(argv)
    if a.cmd == "fetch":
        fetch(a.url, a.out, a.timeout)
    elif a.cmd == "bootstrap":
        print(bootstrap(a.url, a.host, a.port, a.timeout))
    elif a.cmd == "field":
        print(field(a.file, a.key))
    else:
        demo_text(a.index, a.parts, a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
