"""``k2 simulate`` as the end-to-end tests run it: a process that says where it listens."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from pathlib import Path

import websockets
from click.testing import CliRunner

from k2.cli import main
from k2.simulator import read_ledger
from tests.polling import wait_until

K2 = [sys.executable, "-c", "from k2.cli import main; main()"]


def test_help_documents_every_option() -> None:
    """`k2 simulate --help` documents every option."""
    result = CliRunner().invoke(main, ["simulate", "--help"])
    assert result.exit_code == 0
    for option in (
        "--port",
        "--rate",
        "--seed",
        "--kraken-symbols",
        "--binance-symbols",
        "--replay",
        "--ledger",
        "--drop-after-trades",
        "--drop-after-seconds",
        "--stall",
        "--garble-every",
        "--duplicate-every",
        "--lose-every",
        "--reject-symbol",
        "--max-connection-age",
        "--shutdown-after",
        "--binance-ping-interval",
        "--urls-file",
    ):
        assert option in result.output


def test_a_bad_option_is_one_line_error() -> None:
    """A symbol the simulator does not list is refused naming it, with exit code 1."""
    result = CliRunner().invoke(main, ["simulate", "--kraken-symbols", "XBT/FOO"])
    assert result.exit_code == 1
    assert "unknown kraken symbol(s) ['XBT/FOO']" in result.output


def test_the_process_serves_until_sigterm_and_keeps_its_ledger(tmp_path: Path) -> None:
    """`k2 simulate` says where it listens, serves trades until SIGTERM, exits cleanly and keeps
    every trade it sent in its ledger."""
    urls_file, ledger = tmp_path / "urls.json", tmp_path / "ledger.jsonl"
    command = [
        *K2,
        "simulate",
        "--port",
        "0",
        "--rate",
        "200",
        "--urls-file",
        str(urls_file),
        "--ledger",
        str(ledger),
        "--kraken-symbols",
        "XBT/USD",
        "--binance-symbols",
        "BTCUSDT",
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)

    def listening() -> bool:
        assert process.poll() is None, f"k2 simulate exited with {process.returncode}"
        return urls_file.exists()

    try:
        wait_until(listening, 20, f"k2 simulate to write {urls_file.name}", every_s=0.05)
        urls = json.loads(urls_file.read_text())

        async def first_trade() -> dict[str, object]:
            async with websockets.connect(urls["binance_ws"] + "/ws/btcusdt@trade") as ws:
                return json.loads(await asyncio.wait_for(ws.recv(), 5))  # type: ignore[no-any-return]

        trade = asyncio.run(first_trade())
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0
    assert urls["kraken_v2"] in out.decode() and urls["binance_rest"] in out.decode()
    assert read_ledger(ledger)[0].fields == trade
