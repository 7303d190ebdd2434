"""Running a server process on loopback: a free port, waiting until it is ready, stopping it.

Shared by `make demo`, the benchmark driver and the test fixtures, which all start real server
processes on 127.0.0.1 and must stop exactly the process they started, by PID.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import time

import httpx

from tabserve.errors import ServiceUnavailable


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(
    url: str, process: subprocess.Popen[bytes], timeout_s: float = 60.0, path: str = "/ready"
) -> None:
    """Poll ``url + path`` until it answers 200; fail early if the process exits."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServiceUnavailable(f"the server exited with code {process.returncode}")
        try:
            if httpx.get(f"{url}{path}", timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise ServiceUnavailable(f"the server at {url} was not ready after {timeout_s:.0f} s")


def stop(process: subprocess.Popen[bytes], timeout_s: float = 20.0) -> int:
    """SIGTERM (the server drains and flushes its prediction log), SIGKILL if it hangs."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
    return int(process.returncode)
