"""StationRouter: deliver a call to whichever node holds the station's WebSocket."""
