"""Kill -9 the edge agent 200+ times at random points of scripted orders; check it all.

A real ``packline edge run`` reads a pseudo-terminal as its serial scanner and prints
on the shipped fake Brother QL (tests/support/chaos.py). Each round types what the
packer scans next and SIGKILLs the agent at a random moment; after the rounds the
bench finishes every order without kills. Then, from the station's store and the
pages the printer received: every confirmed parcel exists once (one row, one event,
one waybill), no order is shipped without its events, and each time the order in
progress came back exactly as it was left. ``tests/test_bench_chaos.py`` runs the
same with 30 kills. Not a test: it prints what happened and exits 1 on any problem.

    .venv/bin/python bench/chaos_bench.py [--kills 200] [--orders 120] [--seed 1]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.chaos import BenchChaos


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=200)
    parser.add_argument("--orders", type=int, default=120)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="packline-chaos-") as tmp:
        chaos = BenchChaos(Path(tmp), orders=args.orders, seed=args.seed)
        try:
            while chaos.result.kills < args.kills:
                chaos.round()
                if chaos.result.kills % 25 == 0:
                    print(f"  {chaos.result.kills} kills ...", flush=True)
            chaos.finish(timeout=900)
            result = chaos.check()
        finally:
            chaos.close()
    result.seconds = time.monotonic() - started
    print(f"kills (SIGKILL at a random point):     {result.kills}")
    print(f"  of them in the middle of an order:   {result.rounds_mid_order}")
    print(f"  order in progress resumed as left:   {result.resumed_as_left}")
    print(f"orders shipped in the end:             {result.orders_shipped} of {args.orders}")
    print(f"parcels confirmed:                     {result.parcels_shipped}")
    print(f"waybill pages the printer printed:     {result.waybill_pages}")
    print(f"labels found printed before a kill:    {result.duplicates_recovered}")
    print(f"problems:                              {len(result.problems)}")
    for problem in result.problems:
        print(f"  - {problem}")
    print(f"took {result.seconds:.0f} s")
    ok = not result.problems and result.orders_shipped == args.orders
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
