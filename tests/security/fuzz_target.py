"""What the fuzz tests attack: one gateway in both OCPI roles with every credential a caller can
hold (an operator key, a token C per OCPI version, a token B of a connected CPO), a station on
line, and the bounds of a run (CHARGEGATE_FUZZ_EXAMPLES, CHARGEGATE_FUZZ_RANDOM).

Hypothesis and schemathesis are synchronous, the gateway lives in the test's event loop: the
fuzzing runs in a worker thread (`in_thread`) and reaches the gateway's components through
`Target.run`, which hands a coroutine back to that loop."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, Phase, settings
from sqlalchemy import func, select
from sqlalchemy.orm import InstrumentedAttribute

from chargegate.sim import SimulatedStation16

from ..conftest import Gateway
from ..support.emsp import FakeEmsp, auth_header
from ..support.emsp_fixtures import EMSP_SETTINGS, api_key, connect_to_stub
from ..support.servers import running
from ..support.stations import station_factory
from ..support.stub_cpo import StubCpo

T = TypeVar("T")

# Examples per operation or per command: small in CI, large for a long run (docs/security.md).
EXAMPLES = int(os.environ.get("CHARGEGATE_FUZZ_EXAMPLES", "20"))
# CI is deterministic (the same cases every run); a long run explores new ones.
RANDOM = os.environ.get("CHARGEGATE_FUZZ_RANDOM") == "1"

STATION = "CP-1"
EVSE = "CP-1-1"
VERSIONS = ("2.1.1", "2.2.1")


def fuzz_settings(examples: int = EXAMPLES) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=not RANDOM,
        database=None,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
        print_blob=True,
    )


@dataclass
class Target:
    gateway: Gateway
    loop: asyncio.AbstractEventLoop
    operator_key: str
    # A registered eMSP party per OCPI version: token C, and its server receives our results.
    emsps: dict[str, FakeEmsp]
    # Parties and peers only the credentials endpoints are fuzzed with: a DELETE there
    # unregisters the caller, which must not lock the rest of the run out.
    spare_emsp: FakeEmsp
    stub: StubCpo
    spare_stub: StubCpo
    cases: int = 0
    failures: list[str] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return self.gateway.base_url

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` in the gateway's event loop, from the fuzzing thread."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=60)

    def count(self, column: InstrumentedAttribute[Any]) -> int:
        """Rows of `column`'s table, counted in the gateway's own database."""

        async def rows() -> int:
            async with self.gateway.state.sessions() as s:
                return int(await s.scalar(select(func.count(column))) or 0)

        return self.run(rows())

    def ocpi_headers(self, version: str) -> dict[str, str]:
        emsp = self.emsps[version]
        assert emsp.token_c is not None
        return {"Authorization": auth_header(version, emsp.token_c)}

    def cpo_headers(self, stub: StubCpo | None = None) -> dict[str, str]:
        """What a connected CPO sends to our eMSP role: its token B."""
        stub = stub or self.stub
        assert stub.token_b is not None
        return {"Authorization": stub.auth_header(stub.token_b)}


async def in_thread(fn: Callable[[], T]) -> T:
    return await asyncio.to_thread(fn)


@pytest.fixture
async def target(database_url: str) -> AsyncIterator[Target]:
    async with (
        running(Gateway(database_url, **EMSP_SETTINGS)) as gateway,
        running(FakeEmsp(party_id="EMA")) as emsp211,
        running(FakeEmsp(party_id="EMB")) as emsp221,
        running(FakeEmsp(party_id="EMC")) as spare_emsp,
        running(StubCpo(party_id="STA", versions=("2.2.1",))) as stub,
        running(StubCpo(party_id="STB", versions=("2.2.1",))) as spare_stub,
        station_factory(gateway.ws_url, SimulatedStation16, STATION) as connect,
    ):
        for emsp, version in ((emsp211, "2.1.1"), (emsp221, "2.2.1"), (spare_emsp, "2.2.1")):
            token_a = await gateway.add_party(party_id=emsp.party_id)
            await emsp.register(gateway.base_url, token_a, version)
        await connect_to_stub(stub, gateway)
        await connect_to_stub(spare_stub, gateway)
        await connect(STATION)
        yield Target(
            gateway=gateway,
            loop=asyncio.get_running_loop(),
            operator_key=await api_key(gateway),
            emsps={"2.1.1": emsp211, "2.2.1": emsp221},
            spare_emsp=spare_emsp,
            stub=stub,
            spare_stub=spare_stub,
        )
