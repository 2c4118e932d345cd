"""OCPI as an eMSP: our versions/credentials, the receivers of command results, Sessions and
CDRs, and the client side that registers with a CPO and sends it commands.

Everything of ours in the eMSP role lives under `/ocpi/emsp/` (the CPO role keeps `/ocpi/versions`,
`/ocpi/{version}` and `/ocpi/cpo/…`), so one process can hold both roles with separate tokens."""
