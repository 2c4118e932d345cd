"""OCPP side: the WebSocket endpoint, one handler class per OCPP version, translation tables."""

import ocpp.messages

from . import validation

# Validate frames inline: for frames this small the library's thread-pool default costs more
# than the validation itself (docs/performance.md#ocpp-validation).
ocpp.messages.ASYNC_VALIDATION = False
validation.install()
