"""Durable outbox delivery: CommandResults and Session pushes reach the peer, once."""
