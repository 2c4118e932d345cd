"""Simulated OCPP 1.6J and 2.0.1 charge points for tests, the demo and benchmarks.

async with SimulatedStation16("CP-1", "ws://127.0.0.1:8080/ocpp") as station:
    station.script.set("RemoteStartTransaction", "reject")
    payload = await station.wait_for_call("RemoteStartTransaction", 2.0)

async with SimulatedStation201("CS-1", "ws://127.0.0.1:8080/ocpp", evses=2) as station:
    station.script.set("UnlockConnector", "ongoing_transaction")

async with await run_fleet("ws://127.0.0.1:8080/ocpp", 100, 2, Script()) as fleet:
    ...
"""

from chargegate.sim.fleet import Fleet, run_fleet
from chargegate.sim.script import Behaviour, Script
from chargegate.sim.station16 import SimulatedStation16
from chargegate.sim.station201 import SimulatedStation201

__all__ = [
    "Behaviour",
    "Fleet",
    "Script",
    "SimulatedStation16",
    "SimulatedStation201",
    "run_fleet",
]
