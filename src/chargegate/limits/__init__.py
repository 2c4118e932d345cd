"""What one client may take of the gateway: request body size (body.py), connections and the
time to send headers (connections.py, in uvicorn's protocol), requests per second per peer
(rates.py). docs/security.md#limits lists each with its setting."""
