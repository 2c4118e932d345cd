"""Operator API keys: `X-API-Key: <key>` (or `Authorization: Bearer <key>`), with scopes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import APIKeyHeader

from chargegate.gateway import gateway_of
from chargegate.store.models import OperatorKey

_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False)


async def _key(
    request: Request, header_key: Annotated[str | None, Security(_api_key_header)]
) -> OperatorKey:
    key = header_key
    if key is None:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        key = value.strip() if scheme.lower() == "bearer" else None
    if not key:
        raise HTTPException(401, "an operator API key is required in the X-API-Key header")
    found = await gateway_of(request).operator_keys.find(key)
    if found is None:
        raise HTTPException(401, "unknown or revoked API key")
    return found


def scoped(scope: str):  # type: ignore[no-untyped-def]
    async def check(key: Annotated[OperatorKey, Depends(_key)]) -> OperatorKey:
        if scope not in key.scopes.split():
            raise HTTPException(403, f"this API key lacks the '{scope}' scope")
        return key

    return check


OperatorScope = Annotated[OperatorKey, Depends(scoped("operator"))]
ReadScope = Annotated[OperatorKey, Depends(scoped("read"))]
# Any valid key, whatever its scopes; the eMSP API decides per request what its scopes allow.
AnyKey = Annotated[OperatorKey, Depends(_key)]
