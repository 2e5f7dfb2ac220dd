"""The SNMP GET client and responder: exact BER bytes and a real UDP round trip."""

from __future__ import annotations

import contextlib
import socket

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.printers.snmp import (
    NO_SUCH_OBJECT,
    Counter32,
    SnmpError,
    SnmpTimeout,
    decode_get_request,
    decode_response,
    encode_get_request,
    encode_response,
    snmp_get,
)

OID = "1.3.6.1.2.1.1.1.0"


def test_get_request_exact_bytes() -> None:
    # sysDescr.0, v2c, community public, request id 1 (as net-snmp's snmpget sends it).
    expected = bytes.fromhex(
        "30 26 02 01 01 04 06 70 75 62 6c 69 63 a0 19 02 01 01 02 01 00 02 01 00"
        "30 0e 30 0c 06 08 2b 06 01 02 01 01 01 00 05 00"
    )
    assert encode_get_request(oids=[OID], community="public", request_id=1) == expected
    request = decode_get_request(expected)
    assert (request.version, request.community, request.request_id) == (1, "public", 1)
    assert request.oids == [OID]


def test_large_arcs_and_values_round_trip() -> None:
    oid = "1.3.6.1.4.1.2435.3.3.9.1.6.1.0"
    block = bytes(range(32))
    answer = encode_response(
        version=1,
        community="public",
        request_id=70000,
        bindings=[(oid, block), ("1.3.6.1.2.1.43.10.2.1.4.1.1", Counter32(3_000_000_000))],
    )
    values = decode_response(answer, request_id=70000)
    assert values == {oid: block, "1.3.6.1.2.1.43.10.2.1.4.1.1": 3_000_000_000}


def test_v1_unknown_oid_is_no_such_name() -> None:
    answer = encode_response(
        version=0, community="public", request_id=5, bindings=[(OID, NO_SUCH_OBJECT)]
    )
    with pytest.raises(SnmpError, match="noSuchName"):
        decode_response(answer, request_id=5)


def test_v2c_unknown_oid_is_a_value() -> None:
    answer = encode_response(
        version=1, community="public", request_id=5, bindings=[(OID, NO_SUCH_OBJECT)]
    )
    assert decode_response(answer, request_id=5) == {OID: NO_SUCH_OBJECT}


@given(st.binary(max_size=200))
def test_garbage_never_crashes_the_decoder(data: bytes) -> None:
    with contextlib.suppress(SnmpError):
        decode_get_request(data)


def test_get_from_the_fake_printer(fake_ql: object) -> None:
    from drivers.fakes.ql import BROTHER_STATUS_OID, PAGE_COUNT_OID, FakeQLPrinter

    assert isinstance(fake_ql, FakeQLPrinter)
    for version in (0, 1):
        values = snmp_get(
            "127.0.0.1",
            [BROTHER_STATUS_OID, PAGE_COUNT_OID],
            port=fake_ql.snmp_port,
            version=version,
        )
        block = values[BROTHER_STATUS_OID]
        assert isinstance(block, bytes) and block[:3] == b"\x80\x20\x42"
        assert values[PAGE_COUNT_OID] == fake_ql.page_count


def test_wrong_community_gets_no_answer(fake_ql: object) -> None:
    from drivers.fakes.ql import FakeQLPrinter

    assert isinstance(fake_ql, FakeQLPrinter)
    with pytest.raises(SnmpTimeout):
        snmp_get("127.0.0.1", [OID], port=fake_ql.snmp_port, community="x", timeout=0.2)


def test_silent_port_times_out() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as quiet:
        quiet.bind(("127.0.0.1", 0))
        with pytest.raises(SnmpTimeout):
            snmp_get("127.0.0.1", [OID], port=quiet.getsockname()[1], timeout=0.2)
