"""Use cases of the eMSP role: sending commands to CPOs and following them to their results."""
