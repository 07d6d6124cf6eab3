"""The run report opens in headless Chromium with every chart decoded and drawn (screenshot checked)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image, ImageChops

from node.testnet.charts import CHARTS
from node.testnet.report import write_report

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
T0 = 1_700_000_000.0
ADDR = {"peer0": "0x" + "a" * 40, "peer1": "0x" + "b" * 40, "peer2": "0x" + "c" * 40, "contributor0": "0x" + "d" * 40}


def chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        message = "chromium missing: scripts/test-services.sh installs it (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def fake_run(run_dir: Path) -> None:
    """What a 3-peer scenario run leaves behind: metrics, summary, timeline, accounts, result."""
    for i in range(3):
        d = run_dir / f"peer{i}"
        d.mkdir(parents=True)
        recs = [{"event": "start", "t": T0 + 2 + i, "epoch": 0, "val_loss": 5.5, "shards": ["s0"]}]
        for e in range(8):
            alive = not (i == 2 and 3 <= e < 5)
            if alive:
                recs.append({"event": "epoch", "t": T0 + 10 + 5 * e + i * 0.2, "epoch": e, "new_epoch": e + 1,
                             "loss": 5.4 - 0.15 * e, "samples": 96, "group_size": 3 if e not in (3, 4) else 2,
                             "averaged": True, "val_loss": (5.3 - 0.14 * e) if i == 0 else None, "elapsed_s": 5.0})
        recs.append({"event": "final", "t": T0 + 52, "epoch": 8, "val_loss": 4.2})
        d.joinpath("metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    summary = {"peers": 3, "epochs": 8, "rounds": 8, "val_loss_start": 5.5, "val_loss_end": 4.2, "wall_s": 60,
               "failed_peers": [], "receipts": 22, "receipts_rejected": 2,
               "shards": [{"contributor": 0, "verdict": "pass", "passed": True, "records": 900, "reasons": []},
                          {"contributor": 1, "verdict": "fail", "passed": False, "records": 0,
                           "reasons": ["299 of 300 records (100%) are exact duplicates"]}],
               "rewards": {ADDR["peer0"]: {"role": "peer", "tokens": str(900 * 10**18)},
                           ADDR["peer1"]: {"role": "peer", "tokens": str(850 * 10**18)},
                           ADDR["peer2"]: {"role": "peer", "tokens": "0"},
                           ADDR["contributor0"]: {"role": "data", "tokens": str(700 * 10**18)}}}
    run_dir.joinpath("summary.json").write_text(json.dumps(summary))
    run_dir.joinpath("timeline.json").write_text(json.dumps({"started_at": T0, "events": [
        {"t": 24.0, "epoch": 3, "action": "kill", "peer": 2, "line": 20, "detail": ""},
        {"t": 34.0, "epoch": 5, "action": "restart", "peer": 2, "line": 25, "detail": ""}]}))
    run_dir.joinpath("accounts.json").write_text(json.dumps({"accounts": ADDR, "receipts": {
        ADDR["peer0"]: {"accepted": 8, "rejected": 0}, ADDR["peer1"]: {"accepted": 8, "rejected": 0},
        ADDR["peer2"]: {"accepted": 4, "rejected": 2}}}))
    run_dir.joinpath("result.json").write_text(json.dumps({"passed": True, "messages": ["ok: s.toml:30: failed peers = 0"]}))


@pytest.mark.browser
def test_report_renders_every_chart_in_headless_chromium(tmp_path):
    browser = chromium()
    run_dir = tmp_path / "run"
    fake_run(run_dir)
    html = write_report(run_dir)
    assert sorted(p.name for p in (run_dir / "charts").glob("*.png")) == sorted(f"{n}.png" for n in CHARTS)
    text = html.read_text()
    assert "src='data:image/png;base64," in text and "http" not in text.split("<body")[1]  # self-contained

    # The page's own script counts images the browser decoded (complete, naturalWidth > 0).
    dom = subprocess.run([browser, *FLAGS, f"--user-data-dir={tmp_path / 'p1'}", "--virtual-time-budget=5000",
                          "--dump-dom", html.as_uri()], capture_output=True, text=True, timeout=120)
    body = re.search(r"<body[^>]*>", dom.stdout)
    assert body, dom.stderr[-2000:]
    assert f'data-charts-rendered="{len(CHARTS)}"' in body.group(0), body.group(0)

    shot = tmp_path / "shot.png"
    subprocess.run([browser, *FLAGS, f"--user-data-dir={tmp_path / 'p2'}", f"--screenshot={shot}",
                    "--window-size=1200,5200", html.as_uri()], capture_output=True, timeout=120)
    assert shot.exists()
    img = Image.open(shot).convert("RGB")
    assert img.size == (1200, 5200)
    # Non-blank: most of the page is white; drawn content (axes, bars, lines, text) covers a real share of it.
    diff = ImageChops.difference(img, Image.new("RGB", img.size, "white")).convert("L").point(lambda v: 255 if v > 40 else 0)
    inked = sum(diff.histogram()[255:]) / (img.size[0] * img.size[1])
    assert inked > 0.03, f"only {inked:.1%} of the screenshot is drawn"
    # Each chart's area has content: look at where the browser laid out a big chart (the loss chart at the top).
    top = diff.crop((0, 0, 1200, 2600))
    assert sum(top.histogram()[255:]) / (1200 * 2600) > 0.03
    colors = img.resize((120, 520)).getcolors(maxcolors=100000)
    assert colors is not None and len(colors) > 50  # charts are colourful, not a blank or an error page


def test_report_command_regenerates_a_plain_testnet_run_and_refuses_other_dirs(tmp_path):
    from typer.testing import CliRunner

    from node.cli.app import _register_groups, app

    if not app.registered_groups:
        _register_groups()

    run_dir = tmp_path / "run"
    fake_run(run_dir)
    for name in ("timeline.json", "accounts.json", "result.json"):  # what `testnet up` does not write
        (run_dir / name).unlink()
    runner = CliRunner()
    ok = runner.invoke(app, ["testnet", "report", str(run_dir)])
    assert ok.exit_code == 0, ok.output
    assert (run_dir / "report.html").exists() and len(list((run_dir / "charts").glob("*.png"))) == len(CHARTS)
    bad = runner.invoke(app, ["testnet", "report", str(tmp_path)])
    assert bad.exit_code == 2 and "not a testnet run directory" in bad.output
