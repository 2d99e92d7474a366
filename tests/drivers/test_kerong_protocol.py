"""Kerong KR-CU16 frames: the spec's worked examples, and the parser's recovery from bad bytes."""
import pytest

from edge.drivers.lockboard.protocol import (
    BUS_QUERY,
    REPLY_LEN,
    REQUEST_LEN,
    Cmd,
    FrameError,
    FrameParser,
    Reply,
    Request,
    checksum,
    decode_reply,
    decode_request,
    encode_reply,
    status_request,
    unlock_board_request,
    unlock_request,
)

ALL_LATCHED_EMPTY = bytes.fromhex("02 00 35 FF FF 00 00 03 38")


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        (unlock_request(0, 0), "02 00 31 03 36"),  # open board 0 lock 1
        (unlock_request(1, 0), "02 10 31 03 46"),  # open board 1 lock 1
        (status_request(0), "02 00 30 03 35"),
        (BUS_QUERY, "02 F0 32 03 27"),
        (unlock_board_request(2), "02 20 33 03 58"),
        (unlock_request(1, 15), "02 1F 31 03 55"),
    ],
)
def test_requests_match_the_spec_bytes(frame: bytes, expected: str) -> None:
    assert frame == bytes.fromhex(expected)


def test_checksum_is_the_low_byte_of_the_sum() -> None:
    assert checksum(bytes.fromhex("02 F0 32 03")) == 0x27
    assert checksum(bytes([0xFF, 0xFF, 0x03])) == (0xFF + 0xFF + 0x03) & 0xFF


def test_worked_status_reply_decodes_as_all_latched_all_empty() -> None:
    assert decode_reply(ALL_LATCHED_EMPTY) == Reply(board=0, cmd=Cmd.STATUS_REPLY, latches=0xFFFF, items=0)


def test_reply_bit_layout_lock1_is_l1_bit0_and_lock9_is_l2_bit0() -> None:
    frame = encode_reply(Cmd.STATUS_REPLY, 3, latches=1 << 0 | 1 << 8, items=1 << 15)
    assert frame[1:7] == bytes([0x30, 0x35, 0x01, 0x01, 0x00, 0x80])
    assert decode_reply(frame) == Reply(3, Cmd.STATUS_REPLY, latches=0x0101, items=0x8000)


def test_encoded_reply_reproduces_the_worked_example() -> None:
    assert encode_reply(Cmd.STATUS_REPLY, 0, 0xFFFF, 0) == ALL_LATCHED_EMPTY


def test_request_decodes_board_and_lock_nibbles() -> None:
    assert decode_request(unlock_request(4, 11)) == Request(board=4, lock=11, cmd=Cmd.UNLOCK)


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        ("02 00 35 FF FF 00 00 03 39", "bad checksum"),
        ("02 00 35 FF FF 00 00 03", "too short"),
        ("02 00 35 FF FF 00 00 00 03 38", "too long"),
        ("03 00 35 FF FF 00 00 03 39", "no STX"),
        ("02 00 35 FF FF 00 00 04 39", "no ETX"),
        ("02 01 35 FF FF 00 00 03 39", "lock nibble in a reply address"),
        ("02 00 30 FF FF 00 00 03 33", "a request command, not a reply"),
    ],
)
def test_malformed_replies_are_refused(frame: str, reason: str) -> None:
    with pytest.raises(FrameError):
        decode_reply(bytes.fromhex(frame))


def test_out_of_range_addresses_are_refused() -> None:
    with pytest.raises(ValueError, match="board 16"):
        status_request(16)
    with pytest.raises(ValueError, match="lock 16"):
        unlock_request(0, 16)


def test_parser_skips_stray_bytes_before_a_frame() -> None:
    parser = FrameParser(REPLY_LEN)
    assert parser.feed(b"\xfb\xfb\x00" + ALL_LATCHED_EMPTY) == [ALL_LATCHED_EMPTY]
    assert parser.discarded == 3


def test_parser_resyncs_after_a_false_stx() -> None:
    parser = FrameParser(REPLY_LEN)
    assert parser.feed(b"\x02\xfb" + ALL_LATCHED_EMPTY) == [ALL_LATCHED_EMPTY]
    assert parser.discarded == 2


def test_parser_drops_a_frame_with_a_bad_checksum_and_keeps_the_next() -> None:
    corrupt = bytes.fromhex("02 10 35 00 00 00 00 03 00")
    parser = FrameParser(REPLY_LEN)
    assert parser.feed(corrupt + ALL_LATCHED_EMPTY) == [ALL_LATCHED_EMPTY]
    assert parser.discarded == len(corrupt)


def test_parser_recovers_from_a_torn_frame() -> None:
    parser = FrameParser(REPLY_LEN)
    assert parser.feed(ALL_LATCHED_EMPTY[:5] + ALL_LATCHED_EMPTY) == [ALL_LATCHED_EMPTY]


def test_parser_joins_a_frame_fed_byte_by_byte() -> None:
    parser = FrameParser(REQUEST_LEN)
    frames = [f for byte in BUS_QUERY + status_request(1) for f in parser.feed(bytes([byte]))]
    assert frames == [BUS_QUERY, status_request(1)]
    assert parser.discarded == 0


def test_parser_waits_for_the_rest_of_a_frame() -> None:
    parser = FrameParser(REPLY_LEN)
    assert parser.feed(ALL_LATCHED_EMPTY[:4]) == []
    assert parser.feed(ALL_LATCHED_EMPTY[4:]) == [ALL_LATCHED_EMPTY]
