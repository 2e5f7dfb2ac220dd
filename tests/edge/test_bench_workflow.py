"""The bench workflow (B1–B8) through the pure state machine, path by path."""

from __future__ import annotations

import pytest

from edge.bench import BenchState, next_step
from tests.support.bench import CAP, TEE, SimBench, order

OP = "OP-0042"


def bench(*orders_: object, **rules: object) -> SimBench:
    sim = SimBench(orders=orders_ or [order("A1")], **rules)  # type: ignore[arg-type]
    return sim


def packed(sim: SimBench, order_no: str = "A1") -> SimBench:
    sim.scan(OP, order_no, TEE, TEE, CAP)
    return sim


# --------------------------------------------------------------------------- operator


def test_the_packer_logs_in_with_a_badge_and_every_event_names_them() -> None:
    sim = bench()
    refused = sim.scan("A1")
    assert refused.outcome == "refused" and refused.code == "no_operator"
    assert "badge" in refused.message
    assert sim.state.order is None
    hello = sim.scan(OP)
    assert hello.ok and sim.state.operator == "0042"
    packed(sim)
    login, *rest = [e for e in sim.events if e.TYPE != "scan.rejected"]
    assert login.TYPE == "operator.login" and login.operator == "0042"
    assert all(getattr(e, "operator", "0042") == "0042" for e in rest), rest


def test_without_require_operator_the_station_operator_is_named() -> None:
    sim = bench(require_operator=False, default_operator="day-shift")
    sim.scan("A1", TEE, TEE, CAP)
    (shipped,) = sim.of("shipment.shipped")
    assert shipped.operator == "day-shift"
    assert sim.of("order.started")[0].operator == "day-shift"


def test_another_badge_logs_the_first_packer_out_and_logout_ends_the_session() -> None:
    sim = bench()
    sim.scan(OP, "OP-7")
    assert [e.TYPE for e in sim.events] == ["operator.login", "operator.logout", "operator.login"]
    assert sim.state.operator == "7"
    assert sim.scan("CMD-LOGOUT").ok and sim.state.operator is None
    assert sim.scan("A1").code == "no_operator"


# --------------------------------------------------------------------------- order and verify


def test_an_order_is_verified_item_by_item_then_ships_with_its_contents() -> None:
    sim = bench()
    started = sim.scan(OP, "A1")
    assert "Packing A1: 3 items" in started.message
    assert [p.kind for p in sim.labels] == ["packing_list"]
    ok = sim.scan(TEE)
    assert ok.outcome == "ok" and "1 of 2" in ok.message
    assert not sim.waybills()  # never a waybill before verification
    sim.scan(TEE)
    done = sim.scan(CAP)
    assert done.outcome == "done" and "A1 shipped" in done.message
    (waybill,) = sim.waybills()
    assert waybill.job_id == "A1-r1-waybill-1"
    verified = sim.of("item.verified")
    assert [(v.sku, v.qty, v.parcel_no) for v in verified] == [
        ("TEE", 1, 1),
        ("TEE", 1, 1),
        ("CAP", 1, 1),
    ]
    (packed_,) = sim.of("order.packed")
    assert packed_.parcel_count == 1
    (shipped,) = sim.of("shipment.shipped")
    assert shipped.confirm == "auto" and shipped.print_job_id == waybill.job_id
    assert [(i.sku, i.qty) for i in shipped.contents] == [("CAP", 1), ("TEE", 2)]
    assert shipped.tracking_no == "SFA1" and shipped.print_verified
    types = [e.TYPE for e in sim.events]
    # order.packed before the waybill prints, the shipment after it printed.
    assert types.index("order.packed") < types.index("shipment.shipped")
    assert sim.state.order is None and sim.state.last_order_no == "A1"


def test_a_shipped_order_is_refused_and_prints_nothing() -> None:
    sim = packed(bench())
    labels = len(sim.labels)
    again = sim.scan("A1")
    assert again.code == "already_shipped" and "already shipped at" in again.message
    assert len(sim.labels) == labels


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"status": "held", "hold_reason": "buyer moved"}, "order is on hold: buyer moved"),
        ({"status": "cancelled"}, "order was cancelled"),
        ({"tracking_no": ""}, "missing tracking number"),
    ],
)
def test_a_blocked_order_is_refused_with_the_audits_words(
    change: dict[str, str], words: str
) -> None:
    sim = bench(order("A1", **change))
    refused = sim.scan(OP, "A1")
    assert (
        refused.code == "not_packable"
        and refused.message == f"cannot pack A1: {words} — put this order aside"
    )
    (rejected,) = sim.of("scan.rejected")
    assert rejected.order_no == "A1" and rejected.code == "not_packable"


def test_unknown_codes_and_items_without_an_order_are_refused() -> None:
    sim = bench()
    sim.scan(OP)
    unknown = sim.scan("NO-SUCH-1")
    assert unknown.code == "unknown_code" and "unknown order NO-SUCH-1" in unknown.message
    item = sim.scan(TEE)
    assert item.code == "no_order" and "T恤" in item.message


def test_the_tracking_number_starts_the_order_too() -> None:
    sim = bench()
    assert sim.scan(OP, "SFA1").ok and sim.state.order is not None


def test_packing_list_is_optional() -> None:
    sim = packed(bench(print_packing_list=False))
    assert [p.kind for p in sim.labels] == ["waybill"]


# --------------------------------------------------------------------------- alarms (B4)


def test_a_wrong_item_blocks_until_acknowledged_and_scanning_on_repeats_it() -> None:
    other = order("B2", lines=[{"sku": "MUG", "name": "杯子", "barcode": "6901234567915"}])
    sim = bench(order("A1"), other)
    sim.scan(OP, "A1")
    wrong = sim.scan("6901234567915")
    assert wrong.outcome == "alarm" and wrong.code == "wrong_item"
    assert "杯子" in wrong.message and "CMD-OK" in wrong.message
    # Scanning on, even the right item, repeats the alarm and counts nothing.
    again = sim.scan(TEE)
    assert again.outcome == "alarm" and again.code == "wrong_item"
    assert sim.state.order is not None and sim.state.order.lines[0].verified == 0
    rejected = sim.of("scan.rejected")
    assert [r.code for r in rejected] == ["wrong_item", "alarm_pending"]
    assert next_step(sim.state, sim.rules).endswith("CMD-OK")
    ok = sim.scan("CMD-OK")
    assert ok.ok
    (ack,) = sim.of("alarm.acknowledged")
    assert (ack.order_no, ack.code, ack.operator) == ("A1", "wrong_item", "0042")
    assert sim.scan(TEE).ok


def test_an_over_scan_never_adds_a_line() -> None:
    sim = bench()
    sim.scan(OP, "A1", CAP)
    over = sim.scan(CAP)
    assert over.code == "over_quantity" and sim.state.alarm is not None
    assert sim.state.order is not None
    assert [ln.verified for ln in sim.state.order.lines] == [0, 1]
    assert len(sim.state.order.lines) == 2


def test_an_extra_item_after_everything_is_verified_is_an_alarm() -> None:
    sim = bench(qc_rate=1.0)  # held for QC after verification: the order stays open
    sim.scan(OP, "A1", TEE, TEE, CAP)
    extra = sim.scan(TEE)
    assert extra.outcome == "alarm" and extra.code == "extra_item"
    assert sim.state.order is not None and sim.state.order.parcels[0].items == 3


def test_quantity_command_counts_several_capped_at_what_is_open() -> None:
    sim = bench(order("A1", lines=[{"sku": "SOCK", "qty": 10}]))
    sim.scan(OP, "A1", "CMD-QTY-4", "SOCK")
    assert sim.state.order is not None and sim.state.order.lines[0].verified == 4
    over = sim.scan("CMD-QTY-7", "SOCK")
    assert over.code == "over_quantity" and "only 6 still open" in over.message
    sim.scan("CMD-OK", "CMD-QTY-6", "SOCK")
    (shipped,) = sim.of("shipment.shipped")
    assert [(i.sku, i.qty) for i in shipped.contents] == [("SOCK", 10)]
    assert [v.qty for v in sim.of("item.verified")] == [4, 6]


def test_bad_commands_are_refused_by_name() -> None:
    sim = bench()
    sim.scan(OP)
    assert sim.scan("CMD-FOO").code == "bad_command"
    assert sim.scan("CMD-QTY-0").code == "bad_command"


def test_undo_takes_back_the_last_item_scan() -> None:
    sim = bench()
    sim.scan(OP, "A1", TEE, CAP)
    undone = sim.scan("CMD-UNDO")
    assert undone.ok and "帽子" in undone.message
    (event,) = sim.of("item.undone")
    assert (event.sku, event.qty, event.parcel_no) == ("CAP", 1, 1)
    assert sim.state.order is not None
    assert [ln.verified for ln in sim.state.order.lines] == [1, 0]
    sim.scan("CMD-UNDO")
    assert sim.scan("CMD-UNDO").code == "nothing_to_undo"


def test_force_verify_needs_a_supervisor_and_records_who() -> None:
    sim = bench(supervisor_badges=frozenset({"OP-9001"}))
    sim.scan(OP, "A1", TEE, TEE)
    sim.scan("CMD-FORCE")
    not_boss = sim.scan("OP-0042")
    assert not_boss.code == "not_supervisor"
    done = sim.scan("OP-9001")  # one line open: forced at once
    assert done.outcome == "done"
    forced = sim.of("item.verified")[-1]
    assert (forced.sku, forced.forced_by, forced.barcode) == ("CAP", "9001", "")
    assert "supervisor" in forced.reason
    assert sim.state.operator == "0042"  # the supervisor's badge did not log anybody in


def test_force_verify_asks_which_line_when_several_are_open() -> None:
    sim = bench(supervisor_badges=frozenset({"9001"}))
    sim.scan(OP, "A1", "CMD-FORCE", "OP-9001")
    assert sim.state.pending is not None and sim.state.pending.supervisor == "9001"
    sim.scan("TEE")  # the SKU from the packing list
    assert sim.state.order is not None and sim.state.order.lines[0].verified == 2
    assert sim.of("item.verified")[-1].qty == 2


def test_gs1_and_upc_forms_of_an_item_are_the_same_item() -> None:
    sim = bench(order("A1", lines=[{"sku": "TEE", "qty": 3, "barcode": "6901234567892"}]))
    sim.scan(OP, "A1")
    assert sim.scan("]E06901234567892").ok  # AIM identifier in front
    assert sim.scan("\x1d0106901234567892\x1d10LOT7").ok  # GS1-128 with FNC1
    assert sim.scan("(01)06901234567892(17)261231").ok  # typed from the printed form
    assert sim.state.order is None  # all three counted: shipped


# --------------------------------------------------------------------------- parcels (B3, B5)


def test_split_parcels_each_get_a_waybill_tracking_number_and_contents() -> None:
    three = order("M1", parcels=[{}, {"tracking_no": "SF-M1-2"}, {"tracking_no": "SF-M1-3"}])
    sim = bench(three)
    sim.scan(OP, "M1", TEE)
    assert sim.scan("CMD-NEXT-PARCEL").ok
    assert sim.of("shipment.shipped")[0].parcel_no == 1
    assert sim.scan(TEE).ok
    last = sim.scan(CAP)
    assert last.code == "parcel_needed"  # parcel 2 of 3 cannot take the last item
    sim.scan("CMD-NEXT-PARCEL")
    assert sim.scan("CMD-NEXT-PARCEL").code in ("parcel_empty", "last_parcel")
    assert sim.scan(CAP).outcome == "done"
    shipped = sim.of("shipment.shipped")
    assert [(s.parcel_no, s.tracking_no, s.parcel_count) for s in shipped] == [
        (1, "SFM1", 3),
        (2, "SF-M1-2", 3),
        (3, "SF-M1-3", 3),
    ]
    assert [[(i.sku, i.qty) for i in s.contents] for s in shipped] == [
        [("TEE", 1)],
        [("TEE", 1)],
        [("CAP", 1)],
    ]
    assert [w.parcel_no for w in sim.waybills()] == [1, 2, 3]


def test_next_parcel_needs_an_item_and_is_refused_on_the_last_parcel() -> None:
    sim = bench(order("A1", parcels=2))
    sim.scan(OP, "A1")
    assert sim.scan("CMD-NEXT-PARCEL").code == "parcel_empty"
    sim.scan(TEE, "CMD-NEXT-PARCEL", TEE)
    assert sim.scan("CMD-NEXT-PARCEL").code == "last_parcel"


def test_confirm_by_scanning_the_waybill_on_the_box() -> None:
    sim = bench(confirm="scan")
    sim.scan(OP, "A1", TEE, TEE, CAP)
    assert sim.of("shipment.shipped") == [] and len(sim.waybills()) == 1
    assert "scan it" in next_step(sim.state, sim.rules)
    done = sim.scan("SFA1")
    assert done.outcome == "done"
    (shipped,) = sim.of("shipment.shipped")
    assert shipped.confirm == "scan"


def test_a_printer_known_not_ready_refuses_the_completing_item() -> None:
    sim = bench()
    sim.scan(OP, "A1", TEE, TEE)
    sim.printer_known_down = "Printer has no labels — load a roll"
    refused = sim.scan(CAP)
    assert refused.code == "printer_not_ready" and "no labels" in refused.message
    assert sim.state.order is not None and sim.state.order.lines[1].verified == 0
    sim.printer_known_down = ""
    assert sim.scan(CAP).outcome == "done"


def test_a_failed_waybill_prints_when_the_printer_is_back() -> None:
    sim = bench()
    sim.scan(OP, "A1", TEE, TEE)
    sim.printer_down = "Printer cover open — close it"
    failed = sim.scan(CAP)
    assert failed.outcome == "refused" and "cover open" in failed.message
    assert sim.of("shipment.shipped") == [] and sim.state.failed_prints
    assert "printer" in next_step(sim.state, sim.rules)
    sim.printer_back()
    (shipped,) = sim.of("shipment.shipped")
    assert shipped.parcel_no == 1 and sim.state.order is None


# --------------------------------------------------------------------------- reprint, void (B6)


def test_reprint_is_a_new_recorded_print_never_a_silent_double() -> None:
    sim = packed(bench())
    sim.scan("CMD-REPRINT")
    first, second = sim.waybills()
    assert second.reprint and second.job_id != first.job_id
    printed = sim.of("label.printed")[-1]
    assert printed.reprint and printed.reason and printed.parcel_no == 1
    assert len(sim.of("shipment.shipped")) == 1


def test_void_then_a_new_label_before_the_parcel_can_ship() -> None:
    sim = bench(confirm="scan")
    sim.scan(OP, "A1", TEE, TEE, CAP)
    sim.scan("CMD-VOID", "SFA1")
    (voided,) = sim.of("label.voided")
    assert (voided.parcel_no, voided.tracking_no, voided.job_id) == (1, "SFA1", "A1-r1-waybill-1")
    assert sim.scan("SFA1").code == "voided_label"
    sim.scan("CMD-REPRINT")
    assert sim.waybills()[-1].job_id == "A1-r1-waybill-1-2"
    assert sim.scan("SFA1").outcome == "done"
    assert sim.of("shipment.shipped")[0].print_job_id == "A1-r1-waybill-1-2"


def test_an_address_change_for_a_printed_order_blocks_shipping_until_void_and_reprint() -> None:
    sim = bench(confirm="scan")
    sim.scan(OP, "A1", TEE, TEE, CAP)
    moved = order(
        "A1",
        revision=2,
        recipient={"name": "张三", "phone": "13812345678", "address": "新地址 9 号"},
    )
    sim.change(moved)
    assert sim.state.alarm is not None and sim.state.alarm.code == "order_changed"
    assert "void" in sim.state.alarm.message
    sim.scan("CMD-OK")
    assert sim.scan("SFA1").code == "label_outdated"
    sim.scan("CMD-VOID", "SFA1", "CMD-REPRINT")
    new = sim.waybills()[-1]
    assert new.revision == 2 and new.job_id.startswith("A1-r2-waybill-1")
    assert sim.scan("SFA1").outcome == "done"


def test_a_hold_from_central_stops_the_order_in_progress() -> None:
    sim = bench(confirm="scan")
    sim.scan(OP, "A1", TEE)
    sim.change(order("A1", revision=2, status="held", hold_reason="customer called"))
    assert sim.state.alarm is not None and "customer called" in sim.state.alarm.message
    sim.scan("CMD-OK")
    assert sim.scan(TEE).code == "order_changed"
    sim.scan("CMD-CANCEL")
    (abandoned,) = sim.of("packing.abandoned")
    assert abandoned.order_no == "A1" and sim.state.order is None


def test_cancel_abandons_the_order_and_voids_its_unshipped_label() -> None:
    sim = bench(confirm="scan")
    sim.scan(OP, "A1", TEE, TEE, CAP, "CMD-CANCEL")
    assert sim.of("packing.abandoned")[0].reason
    assert sim.of("label.voided")[0].reason == "order cancelled at the bench"
    # Packed again from scratch: a new waybill job (the old one printed).
    sim.scan("A1", TEE, TEE, CAP, "SFA1")
    assert sim.waybills()[-1].job_id == "A1-r1-waybill-1-2"
    assert len(sim.of("shipment.shipped")) == 1


# --------------------------------------------------------------------------- QC (B7)


def test_qc_needs_a_second_persons_badge_before_anything_ships() -> None:
    sim = bench(qc_rate=1.0)
    sim.scan(OP, "A1", TEE, TEE, CAP)
    assert sim.waybills() == [] and sim.of("shipment.shipped") == []
    assert sim.scan("CMD-QC-PASS").code == "qc_pending"
    assert sim.scan(OP).code == "qc_same_person"
    sim.scan("OP-77")
    assert sim.state.operator == "0042"  # the checker did not take over the bench
    done = sim.scan("CMD-QC-PASS")
    assert done.outcome == "done"
    (qc,) = sim.of("qc.checked")
    assert (qc.result, qc.by) == ("pass", "77")
    assert len(sim.of("shipment.shipped")) == 1


def test_a_failed_qc_sends_the_order_back_for_repacking() -> None:
    sim = bench(qc_rate=1.0)
    sim.scan(OP, "A1", TEE, TEE, CAP, "OP-77", "CMD-QC-FAIL")
    assert sim.of("qc.checked")[0].result == "fail"
    assert sum(u.qty for u in sim.of("item.undone")) == 3
    assert sim.state.order is not None and sim.state.order.items_open == 3
    sim.scan(TEE, TEE, CAP, "OP-78", "CMD-QC-PASS")
    assert len(sim.of("shipment.shipped")) == 1


def test_qc_choice_is_reproducible_from_order_number_and_seed() -> None:
    from sync.qc import qc_selected

    chosen = [n for n in range(2000) if qc_selected(f"PDD{n}", seed="wh1", rate=0.05)]
    assert 50 <= len(chosen) <= 150
    assert chosen == [n for n in range(2000) if qc_selected(f"PDD{n}", seed="wh1", rate=0.05)]
    assert chosen != [n for n in range(2000) if qc_selected(f"PDD{n}", seed="wh2", rate=0.05)]
    sim = bench(order("PDD" + str(chosen[0])), qc_rate=0.05, site_seed="wh1")
    sim.scan(OP, "PDD" + str(chosen[0]))
    assert sim.of("order.started")[0].qc is True


# --------------------------------------------------------------------------- returns (B8)


def test_a_return_is_inspected_recorded_and_gets_its_label() -> None:
    sim = packed(bench())
    sim.scan("CMD-RETURN", "SFA1", TEE, "6909999999994")
    assert sim.scan("CMD-RESTOCK").outcome == "done"
    (inspected,) = sim.of("return.inspected")
    assert (inspected.order_no, inspected.tracking_no, inspected.outcome) == (
        "A1",
        "SFA1",
        "restock",
    )
    assert sorted((i.sku, i.qty) for i in inspected.items) == [("6909999999994", 1), ("TEE", 1)]
    assert sim.labels[-1].kind == "return"
    assert sim.state.returning is None


def test_a_return_needs_an_item_and_a_known_parcel() -> None:
    sim = bench()
    sim.scan(OP, "CMD-RETURN")
    assert sim.scan("NOPE").code == "unknown_code"
    sim.scan("A1")
    assert sim.scan("CMD-DAMAGED").code == "no_items"


# --------------------------------------------------------------------------- problems, restart


def test_a_problem_is_reported_for_the_order_in_progress() -> None:
    sim = bench()
    sim.scan(OP, "A1", "CMD-EXCEPTION-STOCKOUT")
    (problem,) = sim.of("problem.reported")
    assert (problem.order_no, problem.problem, problem.operator) == ("A1", "stock_out", "0042")
    sim.scan("CMD-EXCEPTION-DAMAGED")
    assert sim.of("problem.reported")[-1].problem == "damaged"


def test_a_restart_mid_order_continues_and_shows_the_notice_until_the_next_scan() -> None:
    sim = bench()
    sim.scan(OP, "A1", TEE)
    sim.resume()
    assert sim.state.restarted and sim.state.order is not None
    assert sim.state.order.lines[0].verified == 1
    sim.scan(TEE)
    assert not sim.state.restarted
    sim.scan(CAP)
    assert len(sim.of("shipment.shipped")) == 1


def test_a_label_decided_before_a_crash_prints_once_after_it() -> None:
    sim = bench()
    sim.scan(OP, "A1", TEE, TEE)
    # The completing scan is decided and recorded, then the power goes before printing.
    sim.printer_down = "off"
    sim.scan(CAP)
    state = sim.state.model_copy(deep=True)
    state.prints, state.failed_prints = state.failed_prints, []
    sim.state = BenchState.model_validate_json(state.model_dump_json())
    sim.printer_down = ""
    sim.resume()
    assert len(sim.waybills()) == 1 and len(sim.of("shipment.shipped")) == 1
