"""A small SNMP v1/v2c GET client (and the matching responder parts), pure Python.

Brother network printers publish their status block only over SNMP, and the Pi is
aarch64, so this is a few hundred lines of BER instead of a large dependency. It
does exactly what the printers need: GET of a few OIDs, community-string auth, UDP,
one retry. Both directions of the BER are here so the fake printer answers real
requests with real bytes.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import socket
from collections.abc import Sequence

__all__ = [
    "Counter32",
    "GetRequest",
    "NoSuchObject",
    "SnmpError",
    "SnmpTimeout",
    "decode_get_request",
    "decode_response",
    "encode_get_request",
    "encode_response",
    "snmp_get",
]

# BER / SNMP tags.
_INTEGER = 0x02
_OCTET_STRING = 0x04
_NULL = 0x05
_OID = 0x06
_SEQUENCE = 0x30
_COUNTER32 = 0x41
_GAUGE32 = 0x42
_TIMETICKS = 0x43
_COUNTER64 = 0x46
_GET_REQUEST = 0xA0
_GET_RESPONSE = 0xA2
_NO_SUCH_OBJECT = 0x80
_NO_SUCH_INSTANCE = 0x81
_END_OF_MIB_VIEW = 0x82
_UNSIGNED_TAGS = frozenset({_COUNTER32, _GAUGE32, _TIMETICKS, _COUNTER64})
_NO_SUCH_TAGS = frozenset({_NO_SUCH_OBJECT, _NO_SUCH_INSTANCE, _END_OF_MIB_VIEW})

#: SNMP error-status values (RFC 1157 / 3416) in words.
ERROR_STATUS = {
    1: "tooBig",
    2: "noSuchName",
    3: "badValue",
    4: "readOnly",
    5: "genErr",
}


class SnmpError(Exception):
    """The agent answered with an error, or the answer could not be decoded."""


class SnmpTimeout(SnmpError):
    """No answer from the agent in time."""


class _StaleAnswer(SnmpError):
    """An answer to an earlier request (a retry crossed a slow answer)."""


@dataclasses.dataclass(frozen=True)
class Counter32:
    """An SNMP Counter32 value (for encoding; decoded values are plain ints)."""

    value: int


class NoSuchObject:
    """The agent has no such OID (v2c exception value, or v1 noSuchName)."""

    def __repr__(self) -> str:
        return "NoSuchObject"


NO_SUCH_OBJECT = NoSuchObject()
Value = bytes | int | Counter32 | NoSuchObject | None


# --- encoding ---------------------------------------------------------------------


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _tlv(tag: int, content: bytes) -> bytes:
    return bytes([tag]) + _length(len(content)) + content


def _int(value: int, tag: int = _INTEGER) -> bytes:
    if tag in _UNSIGNED_TAGS:
        body = value.to_bytes(max(1, (value.bit_length() + 8) // 8), "big")
    else:
        body = value.to_bytes(max(1, (value.bit_length() + 8) // 8), "big", signed=True)
    return _tlv(tag, body)


def _oid(oid: str) -> bytes:
    arcs = [int(a) for a in oid.strip(".").split(".")]
    if len(arcs) < 2:
        raise ValueError(f"OID {oid!r} needs at least two arcs")
    out = bytearray([40 * arcs[0] + arcs[1]])
    for arc in arcs[2:]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        out.extend(reversed(chunk))
    return _tlv(_OID, bytes(out))


def _value(value: Value, *, version: int) -> bytes:
    if value is None:
        return _tlv(_NULL, b"")
    if isinstance(value, NoSuchObject):
        return _tlv(_NO_SUCH_OBJECT, b"")
    if isinstance(value, Counter32):
        return _int(value.value & 0xFFFFFFFF, _COUNTER32)
    if isinstance(value, bytes):
        return _tlv(_OCTET_STRING, value)
    return _int(value)


def _message(
    *,
    version: int,
    community: str,
    pdu_tag: int,
    request_id: int,
    bindings: Sequence[tuple[str, Value]],
    error_status: int = 0,
    error_index: int = 0,
) -> bytes:
    varbinds = b"".join(
        _tlv(_SEQUENCE, _oid(oid) + _value(value, version=version)) for oid, value in bindings
    )
    pdu = _tlv(
        pdu_tag,
        _int(request_id) + _int(error_status) + _int(error_index) + _tlv(_SEQUENCE, varbinds),
    )
    return _tlv(_SEQUENCE, _int(version) + _tlv(_OCTET_STRING, community.encode()) + pdu)


def encode_get_request(
    *, oids: Sequence[str], community: str, request_id: int, version: int = 1
) -> bytes:
    """A GetRequest; ``version`` is 0 for SNMPv1, 1 for SNMPv2c."""
    return _message(
        version=version,
        community=community,
        pdu_tag=_GET_REQUEST,
        request_id=request_id,
        bindings=[(oid, None) for oid in oids],
    )


def encode_response(
    *,
    version: int,
    community: str,
    request_id: int,
    bindings: Sequence[tuple[str, Value]],
) -> bytes:
    """A GetResponse. In v1 an unknown OID becomes error-status noSuchName."""
    error_status = error_index = 0
    if version == 0:
        for index, (_, value) in enumerate(bindings, start=1):
            if isinstance(value, NoSuchObject):
                error_status, error_index = 2, index
                bindings = [(oid, None) for oid, _ in bindings]
                break
    return _message(
        version=version,
        community=community,
        pdu_tag=_GET_RESPONSE,
        request_id=request_id,
        bindings=bindings,
        error_status=error_status,
        error_index=error_index,
    )


# --- decoding ---------------------------------------------------------------------


def _read_tlv(data: bytes, pos: int) -> tuple[int, bytes, int]:
    """(tag, content, next position) of the TLV at ``pos``."""
    if pos + 2 > len(data):
        raise SnmpError("truncated SNMP message")
    tag = data[pos]
    length = data[pos + 1]
    pos += 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or pos + count > len(data):
            raise SnmpError("bad BER length")
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    end = pos + length
    if end > len(data):
        raise SnmpError("truncated SNMP message")
    return tag, data[pos:end], end


def _items(data: bytes) -> list[tuple[int, bytes]]:
    out: list[tuple[int, bytes]] = []
    pos = 0
    while pos < len(data):
        tag, content, pos = _read_tlv(data, pos)
        out.append((tag, content))
    return out


def _decode_oid(content: bytes) -> str:
    if not content:
        raise SnmpError("empty OID")
    first = content[0]
    arcs = [min(first // 40, 2), first - 40 * min(first // 40, 2)]
    value = 0
    for byte in content[1:]:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    return ".".join(str(a) for a in arcs)


def _decode_value(tag: int, content: bytes) -> Value:
    if tag == _OCTET_STRING:
        return bytes(content)
    if tag == _INTEGER:
        return int.from_bytes(content, "big", signed=True) if content else 0
    if tag in _UNSIGNED_TAGS:
        return int.from_bytes(content, "big", signed=False)
    if tag == _NULL:
        return None
    if tag in _NO_SUCH_TAGS:
        return NO_SUCH_OBJECT
    raise SnmpError(f"unsupported SNMP value type 0x{tag:02x}")


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Message:
    version: int
    community: str
    pdu_tag: int
    request_id: int
    error_status: int
    error_index: int
    bindings: list[tuple[str, Value]]


def _decode_message(data: bytes) -> _Message:
    tag, body, _ = _read_tlv(data, 0)
    if tag != _SEQUENCE:
        raise SnmpError("not an SNMP message")
    parts = _items(body)
    if len(parts) != 3 or parts[0][0] != _INTEGER or parts[1][0] != _OCTET_STRING:
        raise SnmpError("not an SNMP v1/v2c message")
    pdu_tag, pdu_body = parts[2]
    fields = _items(pdu_body)
    if len(fields) != 4 or fields[3][0] != _SEQUENCE:
        raise SnmpError("malformed SNMP PDU")
    bindings: list[tuple[str, Value]] = []
    for vb_tag, vb in _items(fields[3][1]):
        pair = _items(vb)
        if vb_tag != _SEQUENCE or len(pair) != 2 or pair[0][0] != _OID:
            raise SnmpError("malformed SNMP variable binding")
        bindings.append((_decode_oid(pair[0][1]), _decode_value(*pair[1])))

    def number(item: tuple[int, bytes]) -> int:
        return int.from_bytes(item[1], "big", signed=True) if item[1] else 0

    return _Message(
        version=number(parts[0]),
        community=parts[1][1].decode("latin-1"),
        pdu_tag=pdu_tag,
        request_id=number(fields[0]),
        error_status=number(fields[1]),
        error_index=number(fields[2]),
        bindings=bindings,
    )


@dataclasses.dataclass(frozen=True, kw_only=True)
class GetRequest:
    """A decoded GetRequest (what the fake printer's agent receives)."""

    version: int
    community: str
    request_id: int
    oids: list[str]


def decode_get_request(data: bytes) -> GetRequest:
    """Decode a GetRequest; raise :class:`SnmpError` for anything else."""
    msg = _decode_message(data)
    if msg.pdu_tag != _GET_REQUEST:
        raise SnmpError(f"not a GetRequest (PDU 0x{msg.pdu_tag:02x})")
    return GetRequest(
        version=msg.version,
        community=msg.community,
        request_id=msg.request_id,
        oids=[oid for oid, _ in msg.bindings],
    )


def decode_response(data: bytes, *, request_id: int) -> dict[str, Value]:
    """Decode the GetResponse to ``request_id`` into {oid: value}."""
    msg = _decode_message(data)
    if msg.pdu_tag != _GET_RESPONSE:
        raise SnmpError(f"not a GetResponse (PDU 0x{msg.pdu_tag:02x})")
    if msg.request_id != request_id:
        raise _StaleAnswer("answer to another request")
    if msg.error_status:
        words = ERROR_STATUS.get(msg.error_status, str(msg.error_status))
        raise SnmpError(f"SNMP error {words} (variable {msg.error_index})")
    return dict(msg.bindings)


_request_ids = itertools.count(int.from_bytes(os.urandom(2), "big") + 1)


def snmp_get(
    host: str,
    oids: Sequence[str],
    *,
    port: int = 161,
    community: str = "public",
    version: int = 1,
    timeout: float = 1.0,
    retries: int = 1,
) -> dict[str, Value]:
    """GET ``oids`` from the agent at ``host:port``; {oid: value}.

    ``version`` 0 is SNMPv1, 1 is SNMPv2c. Raises :class:`SnmpTimeout` when no answer
    arrives after ``retries`` retries, :class:`SnmpError` for error answers;
    ``OSError`` from the socket is left to the caller to translate.
    """
    request_id = next(_request_ids) & 0x7FFFFFFF
    packet = encode_get_request(
        oids=oids, community=community, request_id=request_id, version=version
    )
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.connect((host, port))
        for _ in range(retries + 1):
            sock.send(packet)
            try:
                while True:
                    answer = sock.recv(65535)
                    try:
                        return decode_response(answer, request_id=request_id)
                    except _StaleAnswer:
                        continue
            except TimeoutError:
                continue
    raise SnmpTimeout(f"no SNMP answer from {host}:{port}")
