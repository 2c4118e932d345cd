"""`chargegate location set | show | publish | unpublish | import`: a station's OCPI Location
data and its publication, on the database (gateway running or not; docs/security.md#publishing)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from chargegate.settings import Settings

from .admin import run

_SITE_FLAGS = {
    "name": "name",
    "address": "address",
    "city": "city",
    "postal_code": "postal-code",
    "state": "state",
    "country": "country",
    "time_zone": "time-zone",
    "parking_type": "parking-type",
}


def add_parsers(sub: Any) -> None:
    location = sub.add_parser(
        "location", help="a station's OCPI Location: its data and whether it is published"
    ).add_subparsers(dest="location", required=True)

    set_ = location.add_parser(
        "set",
        help="set the site (all of address, city, postal code, country, coordinates, time "
        "zone) and/or connectors' plugs",
    )
    set_.add_argument("station_id")
    for field, flag in _SITE_FLAGS.items():
        set_.add_argument(f"--{flag}", dest=field)
    set_.add_argument("--latitude", help='decimal degrees, e.g. "52.376510"')
    set_.add_argument("--longitude", help='decimal degrees, e.g. "4.894870"')
    set_.add_argument("--facility", action="append", help="OCPI Facility; repeat for several")
    set_.add_argument(
        "--twentyfourseven", action="store_true", default=None, help="open around the clock"
    )
    set_.add_argument(
        "--connector",
        action="append",
        metavar="N:KEY=VALUE,...",
        help="connector N's plug: standard, format, power_type, max_voltage, max_amperage "
        "[, max_electric_power, physical_reference]; e.g. 1:standard=IEC_62196_T2,"
        "format=SOCKET,power_type=AC_3_PHASE,max_voltage=230,max_amperage=32",
    )
    set_.add_argument("--publish", action="store_true", help="publish it too")
    set_.set_defaults(func=location_set)

    show = location.add_parser("show", help="a station's Location data and publication (JSON)")
    show.add_argument("station_id")
    show.set_defaults(func=location_show)

    publish = location.add_parser("publish", help="serve the station as an OCPI Location")
    publish.add_argument("station_id")
    publish.set_defaults(func=location_publish)

    unpublish = location.add_parser("unpublish", help="withdraw the station's OCPI Location")
    unpublish.add_argument("station_id")
    unpublish.set_defaults(func=location_unpublish)

    imp = location.add_parser(
        "import", help="OCPI Location JSON (2.1.1 or 2.2.1, one object or a list) onto stations"
    )
    imp.add_argument("file", help="a JSON file, or - for standard input")
    imp.add_argument(
        "--station", help="the station one Location is for (default: the Location's id)"
    )
    imp.add_argument(
        "--by-order",
        action="store_true",
        help="first EVSE to connector 1 and so on (default: by EVSE uid)",
    )
    imp.add_argument("--publish", action="store_true", help="publish them too")
    imp.set_defaults(func=location_import)


def _fail(problems: list[str]) -> int:
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    print("nothing was written", file=sys.stderr)
    return 2


def _print(stations: list[Any]) -> None:
    from chargegate.api.locations import location_json

    admission = Settings().ocpp_admission
    for station in stations:
        print(json.dumps(location_json(station, admission), indent=2, ensure_ascii=False))


def _refusals() -> tuple[type[Exception], ...]:
    from chargegate.domain.location_data import LocationDataError
    from chargegate.service.locations import NotPublishable, UnknownStation

    return (LocationDataError, NotPublishable, UnknownStation)


def _problems(exc: Exception) -> list[str]:
    return list(getattr(exc, "problems", None) or [str(exc).strip("'\"")])


def _site_args(args: argparse.Namespace) -> dict[str, Any] | None:
    site: dict[str, Any] = {
        field: getattr(args, field) for field in _SITE_FLAGS if getattr(args, field) is not None
    }
    if args.latitude is not None or args.longitude is not None:
        site["coordinates"] = {"latitude": args.latitude, "longitude": args.longitude}
    if args.facility:
        site["facilities"] = args.facility
    if args.twentyfourseven:
        site["twentyfourseven"] = True
    return site or None


def _connector_args(items: list[str]) -> dict[str, Any]:
    from chargegate.domain.location_data import LocationDataError

    connectors: dict[str, Any] = {}
    problems = []
    for item in items:
        number, sep, pairs = item.partition(":")
        spec: dict[str, Any] = {}
        for pair in pairs.split(","):
            key, eq, value = pair.partition("=")
            if not eq:
                problems.append(f"--connector {item!r}: {pair!r} is not KEY=VALUE")
                continue
            key = key.strip()
            spec[key] = (
                int(value) if value.strip().isdigit() and key != "physical_reference" else value
            )
        if not sep:
            problems.append(f"--connector {item!r}: N:KEY=VALUE,... is expected")
        connectors[number.strip()] = spec
    if problems:
        raise LocationDataError(problems)
    return connectors


def location_set(args: argparse.Namespace) -> int:
    from chargegate.domain.location_data import (
        LocationDataError,
        parse_connector_specs,
        parse_site,
    )

    try:
        raw_site = _site_args(args)
        site = parse_site(raw_site) if raw_site is not None else None
        specs = parse_connector_specs(_connector_args(args.connector or []))
        if site is None and not specs and not args.publish:
            raise LocationDataError(["nothing to set: give the site's fields or --connector"])
        station = run(
            lambda tools: tools.locations.set(args.station_id, site, specs, publish=args.publish)
        )
    except _refusals() as exc:
        return _fail(_problems(exc))
    _print([station])
    return 0


def location_show(args: argparse.Namespace) -> int:
    try:
        station = run(lambda tools: tools.locations.show(args.station_id))
    except _refusals() as exc:
        return _fail(_problems(exc))
    _print([station])
    return 0


def location_publish(args: argparse.Namespace) -> int:
    try:
        run(lambda tools: tools.locations.publish(args.station_id))
    except _refusals() as exc:
        return _fail(_problems(exc))
    print(f"station {args.station_id} is published as an OCPI Location")
    return 0


def location_unpublish(args: argparse.Namespace) -> int:
    try:
        run(lambda tools: tools.locations.unpublish(args.station_id))
    except _refusals() as exc:
        return _fail(_problems(exc))
    print(f"station {args.station_id} is no longer published")
    if Settings().ocpp_admission == "open":
        print("warning: CHARGEGATE_OCPP_ADMISSION=open serves every station all the same")
    return 0


def location_import(args: argparse.Namespace) -> int:
    try:
        text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text()
        data = json.loads(text)
    except (OSError, ValueError) as exc:
        return _fail([f"{args.file}: {exc}"])
    try:
        stations = run(
            lambda tools: tools.locations.import_locations(
                data, station_id=args.station, by_order=args.by_order, publish=args.publish
            )
        )
    except _refusals() as exc:
        return _fail(_problems(exc))
    _print(stations)
    return 0
