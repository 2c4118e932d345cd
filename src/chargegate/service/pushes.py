"""Kept for adapters that still import `station_and_connectors` from here; Session and CDR
pushes are written by the store (store/peer_push_sql.py)."""

from __future__ import annotations

from chargegate.store.peer_pushes_compat import station_and_connectors

__all__ = ["station_and_connectors"]
