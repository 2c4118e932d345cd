"""Send a command to a CPO as an eMSP, follow it through the CPO's answer and result, and tell
the API client about every change (events for the SSE stream and webhooks). One job per module:
submit.py, answers.py, results.py, expiry.py, queries.py; transitions.py writes each change."""

from __future__ import annotations

from chargegate.settings import Settings

from .answers import RecordAnswer
from .events import EmspEvents
from .expiry import ResolveExpired
from .peers import EmspPeers
from .ports import CpoCommandChannel
from .queries import CommandQueries
from .results import RecordResult
from .submit import SubmitCommand
from .transitions import Transitions
from .views import Requester

__all__ = ["EmspCommands", "Requester"]


class EmspCommands:
    """The eMSP command use cases, wired together over one event log."""

    def __init__(
        self,
        settings: Settings,
        events: EmspEvents,
        peers: EmspPeers,
        channel: CpoCommandChannel,
    ) -> None:
        transitions = Transitions(events)
        queries = CommandQueries(events, peers)
        record_answer = RecordAnswer(settings, transitions)
        self.submit = SubmitCommand(settings, events, peers, channel, record_answer)
        self.record_answer = record_answer
        self.record_result = RecordResult(events, transitions)
        self.resolve_expired = ResolveExpired(settings, events, transitions)
        self.get = queries.get
        self.list = queries.list
        self.emit = transitions.emit
