"""Simulated OCPP 1.6J charge points for tests, the demo and benchmarks."""

from chargegate.sim.fleet import Fleet, run_fleet
from chargegate.sim.script import Behaviour, Script
from chargegate.sim.station16 import SimulatedStation16

__all__ = ["Behaviour", "Fleet", "Script", "SimulatedStation16", "run_fleet"]
