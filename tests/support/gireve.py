"""GIREVE IOP's published examples, as text, for the tests of both our roles against it."""

from __future__ import annotations

# GIREVE's StartSession example (OCPI 2.1.1 with `authorization_id`), the request body exactly
# as GIREVE documents it; tests swap the https://xxx.ggg.com host for their own server's.
START_SESSION_REQUEST = """{
    "response_url": "https://xxx.ggg.com/ocpi/emsp/2.1.1/commands/START_SESSION/111-222",
    "token": {
        "uid": "11111",
        "type": "OTHER",
        "auth_id": "22222",
        "visual_number": "33333",
        "issuer": "issuer",
        "valid": true,
        "last_updated": "2020-01-21T06:43:13Z",
        "whitelist": "ALWAYS"
    },
    "authorization_id": "aaa-vvv",
    "location_id": "12345",
    "evse_uid": "54321"
}"""
