"""OCPP side: the WebSocket endpoint, one handler class per OCPP version, translation tables."""

import ocpp.messages

from . import validation

# Validate frames inline with the library's cached validators: the thread-pool default costs more
# than the validation itself for frames this small (measured in issue 7: ~2x throughput).
ocpp.messages.ASYNC_VALIDATION = False
validation.install()
