"""The built-in supplier simulator: many topup-json channels served by one real HTTP server.

Channel `supA` lives at base_url `http://host:port/sim/supA`. Behaviour per channel comes from the start-up
config and can be changed at runtime with `PUT /control/channels/{code}`; see `ChannelBehaviour`.
"""

from .app import create_app
from .behaviour import ChannelBehaviour, Outcome
from .engine import Simulator
from .server import BackgroundServer, RunningSimulator, load_config, run, start_in_thread

__all__ = [
    "BackgroundServer",
    "ChannelBehaviour",
    "Outcome",
    "RunningSimulator",
    "Simulator",
    "create_app",
    "load_config",
    "run",
    "start_in_thread",
]
