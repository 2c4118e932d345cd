"""Operator API keys: `X-API-Key: <key>` (or `Authorization: Bearer <key>`), with scopes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import APIKeyHeader

from chargegate.gateway import gateway_of
from chargegate.service.operator_keys import OperatorKeyRow

_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False)


async def _key(
    request: Request, header_key: Annotated[str | None, Security(_api_key_header)]
) -> OperatorKeyRow:
    key = header_key
    if key is None:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        key = value.strip() if scheme.lower() == "bearer" else None
    if not key:
        raise HTTPException(401, "an operator API key is required in the X-API-Key header")
    gateway = gateway_of(request)
    found = await gateway.operator_keys.find(key)
    if found is None:
        raise HTTPException(401, "unknown or revoked API key")
    wait = gateway.rates.operator_keys.take(found.id)
    if wait:
        message, retry_after = gateway.rates.refusal(wait)
        raise HTTPException(429, message, headers={"Retry-After": retry_after})
    return found


def scoped(scope: str):  # type: ignore[no-untyped-def]
    async def check(key: Annotated[OperatorKeyRow, Depends(_key)]) -> OperatorKeyRow:
        if scope not in key.scopes.split():
            raise HTTPException(403, f"this API key lacks the '{scope}' scope")
        return key

    return check


OperatorScope = Annotated[OperatorKeyRow, Depends(scoped("operator"))]
ReadScope = Annotated[OperatorKeyRow, Depends(scoped("read"))]
# Any valid key, whatever its scopes; the eMSP API decides per request what its scopes allow.
AnyKey = Annotated[OperatorKeyRow, Depends(_key)]
