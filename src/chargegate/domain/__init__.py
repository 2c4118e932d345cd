"""Pure domain: what a command is, how its state moves, what a station's answer means."""
