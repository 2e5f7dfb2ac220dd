"""The packing bench's workflow (B1–B8): a pure state machine fed by scans.

* :mod:`edge.bench.machine` — :func:`step`: state + input + what the agent looked up
  → new state, events, labels to print, feedback (built on :mod:`edge.bench.draft`,
  :mod:`edge.bench.printing` and :mod:`edge.bench.returns`);
* :mod:`edge.bench.inputs` — the inputs, the rules, the world, the decision;
* :mod:`edge.bench.guide` — :func:`next_step`, what the packer scans next;
* :mod:`edge.bench.state` — :class:`BenchState`, the durable state (JSON);
* :mod:`edge.bench.codes` — scans normalised (AIM identifiers, GS1/FNC1, GTINs);
* :mod:`edge.bench.commands` — the command barcodes (``CMD-...``);
* :mod:`edge.bench.sheet` — the printable command sheet.

The agent (:mod:`edge.agent`) looks things up, calls :func:`step`, records the events
and the state in one transaction, prints, and feeds the print results back.
"""

from __future__ import annotations

from edge.bench.codes import ScannedCode, normalise
from edge.bench.commands import COMMANDS, Cmd, parse_command
from edge.bench.guide import next_step
from edge.bench.inputs import (
    BenchRules,
    Decision,
    Input,
    OrderChanged,
    OrderFacts,
    PrintDone,
    PrinterCheck,
    PrinterReady,
    PrintFailed,
    Resume,
    Scan,
    ShippedParcel,
    Unreadable,
    World,
)
from edge.bench.machine import step
from edge.bench.state import BenchState, Feedback, PrintRequest

__all__ = [
    "COMMANDS",
    "BenchRules",
    "BenchState",
    "Cmd",
    "Decision",
    "Feedback",
    "Input",
    "OrderChanged",
    "OrderFacts",
    "PrintDone",
    "PrintFailed",
    "PrintRequest",
    "PrinterCheck",
    "PrinterReady",
    "Resume",
    "Scan",
    "ScannedCode",
    "ShippedParcel",
    "Unreadable",
    "World",
    "next_step",
    "normalise",
    "parse_command",
    "step",
]
