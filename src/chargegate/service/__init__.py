"""Use cases: submit and resolve commands, station events, parties."""
