"""The local Temporal dev server's start: one that lost a port to another listener (the dev server
picks some of its ports itself, and another process may take one before it binds) is tried
again; one whose port stays taken fails, saying where its log is."""

from __future__ import annotations

import socket

import pytest
from temporalio.client import Client

from tenantry.worker.devserver import PORT_RACE_RETRIES, TemporalDevServer, TemporalExited
from tests.servers import free_port

pytestmark = pytest.mark.slow


def taken_port() -> socket.socket:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    return listener


async def test_a_start_that_lost_a_port_is_tried_again(tmp_path):
    listener = taken_port()
    server = TemporalDevServer(
        tmp_path / "temporal", port=free_port(), ui_port=listener.getsockname()[1]
    )
    try:
        server.launch()
        first = server.process
        assert first.wait(timeout=60) != 0  # it could not bind its UI's port, and ended
        listener.close()  # the other process lets the port go
        address = await server.start_launched()
        assert server.process is not first and server.process.poll() is None
        await Client.connect(address)
    finally:
        listener.close()
        server.stop()


async def test_a_port_that_stays_taken_fails_the_start(tmp_path):
    listener = taken_port()
    server = TemporalDevServer(
        tmp_path / "temporal", port=free_port(), ui_port=listener.getsockname()[1]
    )
    try:
        with pytest.raises(TemporalExited, match=r"temporal\.log"):
            await server.start()
        launches = server.log_path.read_text().count("address already in use")
        assert launches == PORT_RACE_RETRIES + 1
    finally:
        listener.close()
        server.stop()
