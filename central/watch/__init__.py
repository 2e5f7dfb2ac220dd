"""The watch: deadlines, shipping exceptions, escalation and alerts (D1–D6, A1).

One function, :func:`tick`, evaluates every timer at one instant; ``packline central
serve`` runs it every ``tick_every`` seconds (:class:`~central.watch.loop.WatchLoop`),
``packline central tick --now …`` once. The parts:

- :mod:`~central.watch.rules` — the rules as data (``central.toml``);
- :mod:`~central.watch.timers` — the timer table and the claim, by kind;
- :mod:`~central.watch.deadlines` — pack-by and ship-by, met by the bench's clock;
- :mod:`~central.watch.exceptions` — shipping exceptions and their history;
- :mod:`~central.watch.escalation` — repeats and levels until someone acts;
- :mod:`~central.watch.conditions` — station offline, label stock, and the generic
  :func:`raise_condition` / :func:`clear_condition`;
- :mod:`~central.watch.reactions` — what bench events start;
- :mod:`~central.watch.reactor` — reacting to stored events once they are acknowledged;
- :mod:`~central.watch.alerts` — the outbox and its publisher;
- :mod:`~central.watch.tickets` — after-sales tickets (D7) on the same alarms;
- :mod:`~central.watch.tracking` — carrier scans and ``logistics_stalled``;
- :mod:`~central.watch.acks` — acknowledgements from CLI, API and MQTT.
"""

from __future__ import annotations

from central.watch import deadlines, escalation, exceptions, reactions, tickets, tracking
from central.watch.alerts import Alert, publish_pending
from central.watch.conditions import clear_condition, raise_condition
from central.watch.deadlines import reevaluate_order
from central.watch.rules import WatchRules
from central.watch.tick import TickResult, tick

__all__ = [
    "Alert",
    "TickResult",
    "WatchRules",
    "clear_condition",
    "deadlines",
    "escalation",
    "exceptions",
    "publish_pending",
    "raise_condition",
    "reactions",
    "reevaluate_order",
    "tick",
    "tickets",
    "tracking",
]
