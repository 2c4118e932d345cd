"""Translation tables and pure rules, fast and without sockets."""

from __future__ import annotations

import base64
import os
import random
import time
import uuid
from datetime import UTC, datetime, timedelta, timezone
from unittest import mock

import pytest
from hypothesis import given
from hypothesis import strategies as st
from ocpp.v16 import call, call_result

from chargegate.delivery.backoff import retry_delay
from chargegate.domain import station_calls as sc
from chargegate.domain import tokens
from chargegate.domain.clock import ocpi_datetime, parse_datetime
from chargegate.domain.commands import CommandResultType as R
from chargegate.domain.commands import CommandType as C
from chargegate.domain.evse import (
    MAX_CONNECTOR_ID,
    evse_status_of,
    evse_uid,
    numbered_evse_uid,
    parse_evse_uid,
)
from chargegate.domain.ids import new_id, new_remote_start_id
from chargegate.domain.results import collapse_to_211, command_result
from chargegate.domain.station_calls import Outcome as O
from chargegate.domain.station_calls import StationReply
from chargegate.ocpi.tokens import authorization_header, candidates_from_header
from chargegate.ocpp import v16_translation as t16

# docs/decisions.md#asynchronous-results: (command, outcome, error code, EVSE status) → 2.2.1
RESULT_TABLE = [
    (C.START_SESSION, O.ACCEPTED, None, "AVAILABLE", R.ACCEPTED),
    (C.START_SESSION, O.REJECTED, None, "AVAILABLE", R.REJECTED),
    (C.START_SESSION, O.REJECTED, None, "CHARGING", R.EVSE_OCCUPIED),
    (C.START_SESSION, O.REJECTED, None, "OUTOFORDER", R.EVSE_INOPERATIVE),
    (C.START_SESSION, O.REJECTED, None, "INOPERATIVE", R.EVSE_INOPERATIVE),
    (C.STOP_SESSION, O.REJECTED, None, None, R.REJECTED),
    (C.RESERVE_NOW, O.OCCUPIED, None, None, R.EVSE_OCCUPIED),
    (C.RESERVE_NOW, O.FAULTED, None, None, R.EVSE_INOPERATIVE),
    (C.RESERVE_NOW, O.UNAVAILABLE, None, None, R.EVSE_INOPERATIVE),
    (C.RESERVE_NOW, O.REJECTED, None, None, R.REJECTED),
    (C.CANCEL_RESERVATION, O.REJECTED, None, None, R.UNKNOWN_RESERVATION),
    (C.CANCEL_RESERVATION, O.ACCEPTED, None, None, R.ACCEPTED),
    (C.UNLOCK_CONNECTOR, O.UNLOCK_FAILED, None, None, R.FAILED),
    (C.UNLOCK_CONNECTOR, O.NOT_SUPPORTED, None, None, R.NOT_SUPPORTED),
    (C.UNLOCK_CONNECTOR, O.ONGOING_TRANSACTION, None, None, R.REJECTED),
    (C.UNLOCK_CONNECTOR, O.UNKNOWN_CONNECTOR, None, None, R.FAILED),
    (C.UNLOCK_CONNECTOR, O.CALL_ERROR, "NotImplemented", None, R.NOT_SUPPORTED),
    (C.START_SESSION, O.CALL_ERROR, "NotSupported", None, R.NOT_SUPPORTED),
    (C.START_SESSION, O.CALL_ERROR, "InternalError", None, R.FAILED),
    (C.STOP_SESSION, O.CONNECTION_LOST, None, None, R.FAILED),
    (C.RESERVE_NOW, O.TIMEOUT, None, None, R.TIMEOUT),
]


@pytest.mark.parametrize(("command", "outcome", "code", "evse", "expected"), RESULT_TABLE)
def test_result_table(
    command: C, outcome: O, code: str | None, evse: str | None, expected: R
) -> None:
    result, message = command_result(command, StationReply(outcome, error_code=code), evse)
    assert result is expected
    if expected is not R.ACCEPTED:
        assert message


@pytest.mark.parametrize(
    ("result", "v211"),
    [
        (R.ACCEPTED, "ACCEPTED"),
        (R.TIMEOUT, "TIMEOUT"),
        (R.NOT_SUPPORTED, "NOT_SUPPORTED"),
        (R.FAILED, "REJECTED"),
        (R.EVSE_OCCUPIED, "REJECTED"),
        (R.EVSE_INOPERATIVE, "REJECTED"),
        (R.UNKNOWN_RESERVATION, "REJECTED"),
        (R.REJECTED, "REJECTED"),
    ],
)
def test_211_collapse(result: R, v211: str) -> None:
    assert collapse_to_211(result) == v211


def test_v16_requests_are_library_dataclasses() -> None:
    expiry = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert t16.to_call(sc.RemoteStart(1, "TAG")) == call.RemoteStartTransaction(
        id_tag="TAG", connector_id=1
    )
    assert t16.to_call(sc.RemoteStop("15")) == call.RemoteStopTransaction(transaction_id=15)
    assert t16.to_call(sc.Reserve(0, expiry, "TAG", 7)) == call.ReserveNow(
        connector_id=0, expiry_date="2030-01-02T03:04:05Z", id_tag="TAG", reservation_id=7
    )
    assert t16.to_call(sc.CancelReservation(7)) == call.CancelReservation(reservation_id=7)
    assert t16.to_call(sc.Unlock(2)) == call.UnlockConnector(connector_id=2)


@pytest.mark.parametrize(
    ("answer", "outcome"),
    [
        (call_result.RemoteStartTransaction(status="Accepted"), O.ACCEPTED),
        (call_result.RemoteStartTransaction(status="Rejected"), O.REJECTED),
        (call_result.ReserveNow(status="Occupied"), O.OCCUPIED),
        (call_result.ReserveNow(status="Faulted"), O.FAULTED),
        (call_result.ReserveNow(status="Unavailable"), O.UNAVAILABLE),
        (call_result.UnlockConnector(status="Unlocked"), O.ACCEPTED),
        (call_result.UnlockConnector(status="UnlockFailed"), O.UNLOCK_FAILED),
        (call_result.UnlockConnector(status="NotSupported"), O.NOT_SUPPORTED),
        (call_result.CancelReservation(status="Rejected"), O.REJECTED),
    ],
)
def test_v16_answers(answer: object, outcome: O) -> None:
    reply = t16.to_reply(answer)
    assert reply.outcome is outcome
    assert reply.status == answer.status  # type: ignore[attr-defined]


def test_ocpi_datetime_is_utc_z_and_short() -> None:
    amsterdam = timezone(timedelta(hours=1))
    assert ocpi_datetime(datetime(2026, 11, 23, 9, 0, tzinfo=amsterdam)) == "2026-11-23T08:00:00Z"
    assert ocpi_datetime(datetime(2026, 11, 23, 8, 0, 0, 123456, tzinfo=UTC)) == (
        "2026-11-23T08:00:00.123Z"
    )
    assert parse_datetime("2015-06-29T20:39:09") == datetime(2015, 6, 29, 20, 39, 9, tzinfo=UTC)
    assert parse_datetime("2016-12-29T17:45:09.2Z").microsecond == 200000


@given(st.datetimes(timezones=st.just(UTC)))
def test_ocpi_datetime_round_trips_to_the_millisecond(value: datetime) -> None:
    text = ocpi_datetime(value)
    assert len(text) <= 25 and text.endswith("Z")
    assert abs(parse_datetime(text) - value) < timedelta(milliseconds=1)


def test_token_header_forms() -> None:
    encoded = base64.b64encode(b"example-token").decode()
    assert authorization_header("2.2.1", "example-token") == f"Token {encoded}"
    assert authorization_header("2.1.1", "example-token") == "Token example-token"
    assert candidates_from_header(f"Token {encoded}") == [encoded, "example-token"]
    # The spec's own example encodes a trailing newline; the token is still found.
    assert "example-token" in candidates_from_header("Token ZXhhbXBsZS10b2tlbgo=")
    assert candidates_from_header("Token plain-token") == ["plain-token"]
    assert candidates_from_header("Bearer x") == []
    # Not ASCII (a header read as Latin-1), or Base64 of bytes that are not UTF-8: only as sent.
    assert candidates_from_header("Token é€") == ["é€"]
    assert candidates_from_header("Token //79") == ["//79"]


@given(st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1))
def test_any_printable_token_survives_base64(token: str) -> None:
    assert token in candidates_from_header(authorization_header("2.2.1", token))


def test_new_tokens_never_start_with_a_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    # A token beginning with '-' cannot be passed as `--token-a TOKEN` on a command line.
    drawn = iter(["-leading-dash", "_fine-token"])
    monkeypatch.setattr(tokens.secrets, "token_urlsafe", lambda _n: next(drawn))
    assert tokens.new_token() == "_fine-token"


def test_evse_uids() -> None:
    assert evse_uid("CP-1", 2) == "CP-1-2"
    assert parse_evse_uid("CP-1-2") == ("CP-1", 2)
    assert parse_evse_uid("CP-1-x") is None
    assert parse_evse_uid("nodash") is None
    assert numbered_evse_uid("CP-1-2") == ("CP-1", 2)
    assert numbered_evse_uid("CP-1-0") is None
    assert numbered_evse_uid(f"CP-1-{MAX_CONNECTOR_ID}") == ("CP-1", MAX_CONNECTOR_ID)
    assert numbered_evse_uid(f"CP-1-{MAX_CONNECTOR_ID + 1}") is None
    assert evse_status_of("Preparing") == "CHARGING"
    assert evse_status_of("Faulted") == "OUTOFORDER"
    assert evse_status_of(None) == "UNKNOWN"


def test_backoff_grows_with_jitter_and_is_capped() -> None:
    rng = random.Random(1)
    delays = [retry_delay(n, 1.0, 60.0, rng) for n in range(1, 10)]
    assert 0.5 <= delays[0] <= 1.0
    assert 4.0 <= delays[3] <= 8.0
    assert all(d <= 60.0 for d in delays)
    assert delays[-1] >= 30.0


@given(st.binary(min_size=10, max_size=10), st.integers(0, 2**48 - 1))
def test_new_ids_are_uuid7_text_as_uuid_writes_it(random_bytes: bytes, ms: int) -> None:
    with (
        mock.patch.object(os, "urandom", return_value=random_bytes),
        mock.patch.object(time, "time_ns", return_value=ms * 1_000_000 + 999_999),
    ):
        text = new_id()
    parsed = uuid.UUID(text)
    assert parsed.version == 7 and parsed.variant == uuid.RFC_4122
    assert str(parsed) == text
    # RFC 9562 layout: 48 bits of milliseconds, version, 12 bits rand_a, variant, 62 bits
    # rand_b. rand_a is the source's first 12 bits, rand_b its bits 14 to 75.
    source = int.from_bytes(random_bytes, "big")
    assert parsed.int >> 80 == ms
    assert (parsed.int >> 64) & 0xFFF == source >> 68
    assert parsed.int & (2**62 - 1) == (source >> 4) & (2**62 - 1)


def test_new_ids_sort_by_the_millisecond_they_were_made_in() -> None:
    before = time.time_ns() // 1_000_000
    first = new_id()
    time.sleep(0.002)
    second = new_id()
    after = time.time_ns() // 1_000_000
    assert before <= uuid.UUID(first).int >> 80 < uuid.UUID(second).int >> 80 <= after
    assert first < second  # as text too: the indexes store the text


@given(st.integers(0, 2**64))
def test_remote_start_ids_are_positive_int32(now_ns: int) -> None:
    assert 1 <= new_remote_start_id(now_ns) <= 2**31 - 1


def test_remote_start_ids_follow_the_millisecond_and_wrap_every_2_to_the_22_ms() -> None:
    # OCPP 2.0.1 remoteStartId: the time in front (index locality), 9 random bits behind.
    ms = 1_765_000_000_000
    first = new_remote_start_id(ms * 1_000_000)
    later = new_remote_start_id((ms + 1) * 1_000_000)
    assert first >> 9 == ms % 2**22 and later >> 9 == (first >> 9) + 1
    assert later > first
    wrapped = new_remote_start_id((ms - ms % 2**22 + 2**22) * 1_000_000)
    assert wrapped >> 9 == 0
    # The random part varies from one id to the next within the same millisecond.
    assert len({new_remote_start_id(ms * 1_000_000) for _ in range(64)}) > 1


def test_new_ids_differ() -> None:
    assert len({new_id() for _ in range(10_000)}) == 10_000
