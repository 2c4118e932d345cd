"""Operator REST API: remote commands, locks, communication log."""
