"""Running the simulator: `run` for the CLI, `start_in_thread` for tests and the demo."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any, Self

import uvicorn

from .app import create_app
from .engine import Simulator


def load_config(config_path_or_dict: str | Path | dict[str, Any] | None) -> dict[str, Any]:
    """A config dict from a JSON file path or a dict (None: no channels)."""
    if config_path_or_dict is None:
        return {}
    if isinstance(config_path_or_dict, dict):
        return config_path_or_dict
    data = json.loads(Path(config_path_or_dict).read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{config_path_or_dict}: simulator config must be a JSON object")
    return data


def _uvicorn_config(app: Any, host: str, port: int, log_level: str, ws: str = "none") -> uvicorn.Config:
    # A hanging dispatch (hang_s) must not hold shutdown for its whole hang.
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        ws=ws,
        timeout_graceful_shutdown=1,  # type: ignore[arg-type]
    )


def run(host: str, port: int, config_path_or_dict: str | Path | dict[str, Any] | None = None) -> None:
    """Serve the simulator until interrupted (what `topup simulate` calls)."""
    app = create_app(load_config(config_path_or_dict))
    uvicorn.Server(_uvicorn_config(app, host, port, "info")).run()


class BackgroundServer:
    """Any ASGI app served by uvicorn on a background thread; stop it with `stop()` or `with`."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, ws: str = "none") -> None:
        self.app = app
        self._server = uvicorn.Server(_uvicorn_config(app, host, port, "warning", ws))
        self._thread = threading.Thread(target=self._server.run, name="uvicorn-background", daemon=True)
        self.host = host
        self.port = port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout_s: float = 10.0) -> Self:
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.01)
        # With port 0 the OS picked one; read it back from the listening socket.
        self.port = self._server.servers[0].sockets[0].getsockname()[1]
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout_s)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class RunningSimulator(BackgroundServer):
    """The simulator on a background thread."""

    def __init__(self, config: dict[str, Any], host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(create_app(config), host, port)

    @property
    def simulator(self) -> Simulator:
        return self.app.state.simulator  # type: ignore[no-any-return]

    def base_url(self, channel: str) -> str:
        """The topup-json base_url of one simulated channel."""
        return f"{self.url}/sim/{channel}"


def start_in_thread(config: dict[str, Any], host: str = "127.0.0.1", port: int = 0) -> RunningSimulator:
    """Start a simulator on a free loopback port (port 0) and return once it is listening."""
    return RunningSimulator(config, host, port).start()
