"""Publishing stations as OCPI Locations: the operator sets a station's Location data (by hand
or by importing OCPI Location JSON) and decides when it is published (docs/security.md#publishing).

Every change is validated whole before anything is written, and written in one transaction:
an import of ten Locations with one bad field writes none of them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from chargegate.domain.evse import evse_uid_of, numbered_evse_uid
from chargegate.domain.location_data import ConnectorSpec, LocationDataError, Site
from chargegate.domain.location_import import ImportedLocation, documents_of, read_location


class UnknownStation(LookupError):
    pass


class NotPublishable(ValueError):
    """A station whose Location data is not complete; `problems` says what is missing."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class ConnectorLocation:
    connector_id: int
    evse_uid: str | None  # the operator's mapping, None: `{station_id}-{connector_id}`
    spec: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class StationLocation:
    """A station's Location data and publication, as stored."""

    id: str
    location_id: str | None
    published: bool
    site: dict[str, Any] | None
    connectors: list[ConnectorLocation]  # EVSEs only (connector id >= 1), by id


@dataclass(frozen=True, slots=True)
class LocationChange:
    """What one station's write changes; None leaves a part as it is."""

    station_id: str
    site: dict[str, Any] | None = None
    specs: dict[int, dict[str, Any]] = field(default_factory=dict)
    published: bool | None = None


class LocationStore(Protocol):
    async def station(self, station_id: str) -> StationLocation | None: ...

    async def by_location_id(self, location_id: str) -> StationLocation | None:
        """The station mapped to that Location id, else the unmapped station with that id."""

    async def write(self, changes: list[LocationChange]) -> None:
        """All changes in one transaction, creating connector rows not seen yet; raises
        UnknownStation (and writes nothing) if a station is not there."""


class Locations:
    def __init__(self, store: LocationStore) -> None:
        self._store = store

    async def show(self, station_id: str) -> StationLocation:
        return await self._known(station_id)

    async def set(
        self,
        station_id: str,
        site: Site | None,
        specs: dict[int, ConnectorSpec],
        *,
        publish: bool = False,
    ) -> StationLocation:
        """Set the site (None: unchanged) and the plugs of the connectors named (the others
        keep theirs); with `publish`, publish it too, or change nothing if it cannot be."""
        station = await self._known(station_id)
        change = LocationChange(
            station_id,
            site=_stored_site(site),
            specs={cid: _stored_spec(spec) for cid, spec in specs.items()},
            published=True if publish else None,
        )
        if publish:
            _check_publishable(_merged(station, change))
        await self._store.write([change])
        return await self._known(station_id)

    async def publish(self, station_id: str) -> StationLocation:
        station = await self._known(station_id)
        _check_publishable(station)
        await self._store.write([LocationChange(station_id, published=True)])
        return await self._known(station_id)

    async def unpublish(self, station_id: str) -> StationLocation:
        await self._known(station_id)
        await self._store.write([LocationChange(station_id, published=False)])
        return await self._known(station_id)

    async def import_locations(
        self,
        data: Any,
        *,
        station_id: str | None = None,
        by_order: bool = False,
        publish: bool = False,
    ) -> list[StationLocation]:
        """OCPI Location JSON (one object or a list) onto our stations: each Location goes to
        the station `station_id` names, else to the one its `id` is (mapped or own). Its EVSEs
        go to the connectors whose EVSE uid they have (mapped, or `{station_id}-{n}`), or with
        `by_order`, the first EVSE to connector 1 and so on. All or nothing."""
        documents = documents_of(data)
        if not documents:
            raise LocationDataError(["no Location in the document"])
        if station_id is not None and len(documents) != 1:
            raise LocationDataError(
                [f"{len(documents)} Locations for one station; import a list without a station"]
            )
        problems: list[str] = []
        changes: list[LocationChange] = []
        merged: list[StationLocation] = []
        for index, document in enumerate(documents):
            where = "location" if len(documents) == 1 else f"locations[{index}]"
            try:
                imported = read_location(document, where)
            except LocationDataError as exc:
                problems += exc.problems
                continue
            station = await (
                self._store.station(station_id)
                if station_id is not None
                else self._store.by_location_id(imported.location_id)
            )
            if station is None:
                named = station_id if station_id is not None else imported.location_id
                problems.append(f"{where}: no station {named!r} (by station id or Location id)")
                continue
            if any(change.station_id == station.id for change in changes):
                problems.append(f"{where}: station {station.id!r} is given a Location twice")
                continue
            try:
                specs = _connectors_for(station, imported, by_order, where)
            except LocationDataError as exc:
                problems += exc.problems
                continue
            change = LocationChange(
                station.id,
                site=_stored_site(imported.site),
                specs=specs,
                published=True if publish else None,
            )
            changes.append(change)
            merged.append(_merged(station, change))
        if problems:
            raise LocationDataError(problems)
        if publish:
            unready: list[str] = []
            for station in merged:
                try:
                    _check_publishable(station)
                except NotPublishable as exc:
                    unready += exc.problems
            if unready:
                raise NotPublishable(unready)
        await self._store.write(changes)
        return [await self._known(change.station_id) for change in changes]

    async def _known(self, station_id: str) -> StationLocation:
        station = await self._store.station(station_id)
        if station is None:
            raise UnknownStation(f"unknown station {station_id!r}")
        return station


def _stored_site(site: Site | None) -> dict[str, Any] | None:
    return None if site is None else site.model_dump(mode="json", exclude_none=True)


def _stored_spec(spec: ConnectorSpec) -> dict[str, Any]:
    return spec.model_dump(mode="json", exclude_none=True)


def _connectors_for(
    station: StationLocation, imported: ImportedLocation, by_order: bool, where: str
) -> dict[int, dict[str, Any]]:
    if by_order:
        return {n: _stored_spec(evse.spec) for n, evse in enumerate(imported.evses, start=1)}
    uids = {
        evse_uid_of(station.id, c.connector_id, c.evse_uid): c.connector_id
        for c in station.connectors
    }
    specs: dict[int, dict[str, Any]] = {}
    problems: list[str] = []
    for evse in imported.evses:
        connector_id = uids.get(evse.uid)
        if connector_id is None:
            numbered = numbered_evse_uid(evse.uid)
            mapped = {c.connector_id for c in station.connectors if c.evse_uid is not None}
            if numbered is not None and numbered[0] == station.id and numbered[1] not in mapped:
                connector_id = numbered[1]  # a connector the station has not reported yet
        if connector_id is None:
            known = ", ".join(sorted(uids)) or "none yet"
            problems.append(
                f"{where}: EVSE uid {evse.uid!r} is none of station {station.id!r}'s EVSEs "
                f"({known}); map it first (chargegate station map) or import by order"
            )
            continue
        specs[connector_id] = _stored_spec(evse.spec)
    if problems:
        raise LocationDataError(problems)
    return specs


def _merged(station: StationLocation, change: LocationChange) -> StationLocation:
    """The station as it will be once `change` is written."""
    connectors = {c.connector_id: c for c in station.connectors}
    for connector_id, spec in change.specs.items():
        old = connectors.get(connector_id)
        connectors[connector_id] = ConnectorLocation(
            connector_id, old.evse_uid if old else None, spec
        )
    return StationLocation(
        station.id,
        station.location_id,
        station.published if change.published is None else change.published,
        station.site if change.site is None else change.site,
        [connectors[cid] for cid in sorted(connectors)],
    )


def _check_publishable(station: StationLocation) -> None:
    problems: list[str] = []
    if station.site is None:
        problems.append(
            f"station {station.id!r} has no Location data (address, coordinates, time zone…): "
            "set it first"
        )
    problems += [
        f"station {station.id!r} connector {c.connector_id} has no plug data "
        "(standard, format, power type, voltage, amperage)"
        for c in station.connectors
        if c.spec is None
    ]
    if problems:
        raise NotPublishable(problems)
