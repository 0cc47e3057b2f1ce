"""Protocol v1 pure layer: frame decoding, channel grammar, field parsing, encoding (no event loop)."""

from __future__ import annotations

import itertools
import json
import math
from typing import Any

import pytest
from channels.layers import BaseChannelLayer

from realtime_project.gateway.errors import (
    BadRequest,
    CloseCode,
    ErrorCode,
    Forbidden,
    GatewayError,
    NotFound,
    RateLimited,
    TooLarge,
    Unauthenticated,
    UnknownType,
)
from realtime_project.gateway.layer_messages import channel_group
from realtime_project.gateway.protocol import (
    MAX_FRAME_BYTES,
    MAX_ID_LENGTH,
    ChannelName,
    Since,
    decode_frame,
    dumps,
    encode_payload,
    error_frame,
    message_frame,
    optional_number,
    parse_channel,
    parse_max_rate,
    parse_since,
    require_str,
    safe_id,
)


def _code(exc_info: pytest.ExceptionInfo[GatewayError]) -> ErrorCode:
    return exc_info.value.code


def _padded(size: int, filler: str = "a") -> str:
    """A JSON frame of exactly `size` UTF-8 bytes, padded with `filler` (1 to 4 bytes each)."""
    head, tail = '{"type":"ping","pad":"', '"}'
    room = size - len(head) - len(tail)
    width = len(filler.encode("utf-8"))
    count, rest = divmod(room, width)
    text = head + filler * count + "a" * rest + tail
    assert len(text.encode("utf-8")) == size
    return text


# --- decode_frame ---------------------------------------------------------------------


class TestDecodeFrame:
    def test_valid_frame_is_returned_unchanged(self) -> None:
        frame = decode_frame('{"type":"subscribe","id":1,"channel":"prices:BTC","extra":[1,2]}')
        assert frame == {"type": "subscribe", "id": 1, "channel": "prices:BTC", "extra": [1, 2]}

    def test_app_action_type(self) -> None:
        assert decode_frame('{"type":"notifications.mark_read","id":"x"}')["type"] == "notifications.mark_read"

    def test_binary_frame_is_unsupported(self) -> None:
        with pytest.raises(BadRequest) as exc:
            decode_frame(None, b'{"type":"ping"}')
        assert _code(exc) is ErrorCode.UNSUPPORTED

    def test_empty_binary_frame_is_unsupported(self) -> None:
        with pytest.raises(BadRequest) as exc:
            decode_frame(None, b"")
        assert _code(exc) is ErrorCode.UNSUPPORTED

    def test_no_text_and_no_bytes_is_bad_request(self) -> None:
        with pytest.raises(BadRequest) as exc:
            decode_frame(None, None)
        assert _code(exc) is ErrorCode.BAD_REQUEST

    @pytest.mark.parametrize(
        "text",
        ["", "   ", "not json", "{", '{"type":"ping",}', "{'type':'ping'}", '{"type":NaN}', "NaN", '"\ud800"'],
    )
    def test_non_json_is_bad_request(self, text: str) -> None:
        with pytest.raises(BadRequest) as exc:
            decode_frame(text)
        assert _code(exc) is ErrorCode.BAD_REQUEST
        assert exc.value.message == "frame is not valid JSON"

    @pytest.mark.parametrize("text", ["[]", '[{"type":"ping"}]', '"ping"', "1", "1.5", "true", "null"])
    def test_json_that_is_not_an_object_is_bad_request(self, text: str) -> None:
        with pytest.raises(BadRequest) as exc:
            decode_frame(text)
        assert _code(exc) is ErrorCode.BAD_REQUEST
        assert exc.value.message == "frame must be a JSON object"

    @pytest.mark.parametrize("text", ["{}", '{"id":1}', '{"type":null}'])
    def test_missing_type(self, text: str) -> None:
        with pytest.raises(BadRequest) as exc:
            decode_frame(text)
        assert _code(exc) is ErrorCode.BAD_REQUEST
        assert exc.value.message == "missing type"

    @pytest.mark.parametrize(
        "value",
        [
            1,
            True,
            [],
            {},
            "",
            "Subscribe",
            "1abc",
            "_x",
            "a-b",
            "a.b.c",
            "app.",
            ".action",
            "app..action",
            "app.Action",
            "a" * 33,
            "app." + "b" * 33,
            "sub scribe",
            "subscribé",
        ],
    )
    def test_invalid_type(self, value: Any) -> None:
        with pytest.raises(BadRequest) as exc:
            decode_frame(json.dumps({"type": value}))
        assert _code(exc) is ErrorCode.BAD_REQUEST
        assert "type must be" in exc.value.message

    @pytest.mark.parametrize("value", ["a", "ping", "a" * 32, "a" * 32 + "." + "b" * 32, "app_1.do_2", "x9.y_"])
    def test_valid_type_names(self, value: str) -> None:
        assert decode_frame(json.dumps({"type": value}))["type"] == value

    def test_type_with_trailing_newline_is_rejected(self) -> None:
        with pytest.raises(BadRequest):
            decode_frame(json.dumps({"type": "subscribe\n"}))

    @pytest.mark.parametrize("value", [1.5, 1e23, True, False, [], {}, [1], {"a": 1}])
    def test_id_of_wrong_type_is_rejected(self, value: Any) -> None:
        with pytest.raises(BadRequest) as exc:
            decode_frame(json.dumps({"type": "ping", "id": value}))
        assert _code(exc) is ErrorCode.BAD_REQUEST
        assert exc.value.message == "id must be a string or an integer"

    def test_huge_integer_id_is_parsed_as_float_and_rejected(self) -> None:
        # 10**23 does not fit 64 bits: orjson yields a float, which is not a valid id.
        with pytest.raises(BadRequest):
            decode_frame('{"type":"ping","id":100000000000000000000000}')

    def test_id_longer_than_limit_is_rejected(self) -> None:
        with pytest.raises(BadRequest) as exc:
            decode_frame(json.dumps({"type": "ping", "id": "x" * (MAX_ID_LENGTH + 1)}))
        assert _code(exc) is ErrorCode.BAD_REQUEST
        assert "longer than 64" in exc.value.message

    def test_id_of_exactly_the_limit_is_accepted(self) -> None:
        frame = decode_frame(json.dumps({"type": "ping", "id": "x" * MAX_ID_LENGTH}))
        assert frame["id"] == "x" * MAX_ID_LENGTH

    def test_multibyte_id_is_limited_in_characters(self) -> None:
        frame = decode_frame(json.dumps({"type": "ping", "id": "é" * MAX_ID_LENGTH}, ensure_ascii=False))
        assert frame["id"] == "é" * MAX_ID_LENGTH

    @pytest.mark.parametrize("value", [0, -1, 2**63 - 1, -(2**63), "", "s1", "é"])
    def test_valid_ids(self, value: str | int) -> None:
        frame = decode_frame(json.dumps({"type": "ping", "id": value}, ensure_ascii=False))
        assert frame["id"] == value
        assert safe_id(frame) == value

    def test_null_id_is_allowed(self) -> None:
        frame = decode_frame('{"type":"ping","id":null}')
        assert safe_id(frame) is None

    def test_invalid_id_is_checked_before_type(self) -> None:
        # A bad id never gets echoed, even when the type is also wrong.
        with pytest.raises(BadRequest) as exc:
            decode_frame(json.dumps({"type": 5, "id": [1]}))
        assert "id must be" in exc.value.message

    def test_frame_of_exactly_max_bytes_is_accepted(self) -> None:
        frame = decode_frame(_padded(MAX_FRAME_BYTES))
        assert frame["type"] == "ping"

    def test_frame_one_byte_over_is_too_large(self) -> None:
        with pytest.raises(TooLarge) as exc:
            decode_frame(_padded(MAX_FRAME_BYTES + 1))
        assert _code(exc) is ErrorCode.TOO_LARGE

    @pytest.mark.parametrize("filler", ["é", "€", "😀"])
    def test_multibyte_frame_at_limit_is_accepted(self, filler: str) -> None:
        text = _padded(MAX_FRAME_BYTES, filler)
        assert len(text) < MAX_FRAME_BYTES  # fewer characters than bytes
        assert decode_frame(text)["type"] == "ping"

    @pytest.mark.parametrize("filler", ["é", "€", "😀"])
    def test_multibyte_frame_over_limit_is_too_large(self, filler: str) -> None:
        text = _padded(MAX_FRAME_BYTES + 1, filler)
        assert len(text) < MAX_FRAME_BYTES
        with pytest.raises(TooLarge):
            decode_frame(text)

    def test_four_byte_characters_just_over_the_character_shortcut(self) -> None:
        # 16,385 four-byte characters: few characters, but 65,540+ bytes.
        text = '{"type":"ping","p":"' + "😀" * (MAX_FRAME_BYTES // 4 + 1) + '"}'
        with pytest.raises(TooLarge):
            decode_frame(text)

    def test_size_is_checked_before_json(self) -> None:
        with pytest.raises(TooLarge):
            decode_frame("x" * (MAX_FRAME_BYTES + 1))

    def test_lone_surrogate_over_limit_is_too_large_not_a_crash(self) -> None:
        text = '{"type":"ping","p":"' + "\ud800" * (MAX_FRAME_BYTES // 3 + 1) + '"}'
        with pytest.raises(TooLarge):
            decode_frame(text)

    def test_lone_surrogate_under_limit_is_bad_request(self) -> None:
        with pytest.raises(BadRequest) as exc:
            decode_frame('{"type":"ping","p":"\ud800"}')
        assert _code(exc) is ErrorCode.BAD_REQUEST

    def test_escaped_unicode_is_decoded(self) -> None:
        assert decode_frame('{"type":"ping","p":"\\u00e9\\ud83d\\ude00"}')["p"] == "é😀"


class TestSafeId:
    def test_none_frame(self) -> None:
        assert safe_id(None) is None

    @pytest.mark.parametrize("value", [True, 1.5, [], None])
    def test_invalid_values(self, value: Any) -> None:
        assert safe_id({"type": "ping", "id": value}) is None

    def test_missing(self) -> None:
        assert safe_id({"type": "ping"}) is None


# --- channel grammar ------------------------------------------------------------------


VALID_CHANNELS = [
    ("prices", "prices", None),
    ("prices:BTC", "prices", "BTC"),
    ("prices:btc", "prices", "btc"),
    ("a", "a", None),
    ("a:b", "a", "b"),
    ("n0_tifs:x.y-z_1", "n0_tifs", "x.y-z_1"),
    ("wallet:0xAbCdEf0123456789abcdef0123456789ABCDEF01", "wallet", "0xAbCdEf0123456789abcdef0123456789ABCDEF01"),
    ("a" + "b" * 23, "a" + "b" * 23, None),
    ("a" + "b" * 23 + ":" + "k" * 64, "a" + "b" * 23, "k" * 64),
    ("x:.", "x", "."),
    ("x:-", "x", "-"),
]

INVALID_CHANNELS = [
    "",
    ":",
    "prices:",
    ":BTC",
    "Prices",
    "1prices",
    "_prices",
    "pri-ces",
    "pri.ces",
    "prices:BT C",
    "prices:BTC:x",
    "prices:BTC/x",
    "prices:{BTC}",
    "prices:BTC!",
    "prices:é",
    "a" + "b" * 24,
    "x:" + "k" * 65,
    " prices",
    "prices ",
    "prices:BTC ",
]


class TestChannelGrammar:
    @pytest.mark.parametrize(("text", "namespace", "key"), VALID_CHANNELS)
    def test_valid_names(self, text: str, namespace: str, key: str | None) -> None:
        channel = parse_channel(text)
        assert channel == ChannelName(namespace, key)
        assert channel.name == text
        assert str(channel) == text

    @pytest.mark.parametrize("text", INVALID_CHANNELS)
    def test_invalid_names(self, text: str) -> None:
        with pytest.raises(BadRequest) as exc:
            parse_channel(text)
        assert _code(exc) is ErrorCode.BAD_REQUEST
        assert exc.value.details == {"channel": text[:100]}

    def test_details_truncate_long_names(self) -> None:
        with pytest.raises(BadRequest) as exc:
            parse_channel("x" * 500)
        assert exc.value.details == {"channel": "x" * 100}

    @pytest.mark.parametrize("value", [None, 1, b"prices", ["prices"], {"ns": "prices"}])
    def test_non_string_is_bad_request(self, value: object) -> None:
        with pytest.raises(BadRequest) as exc:
            parse_channel(value)
        assert exc.value.message == "channel must be a string"

    def test_trailing_newline_is_rejected(self) -> None:
        with pytest.raises(BadRequest):
            parse_channel("prices:BTC\n")

    def test_group_of_a_namespace_only_channel(self) -> None:
        assert channel_group(parse_channel("prices").name) == "rt.prices"
        assert channel_group(parse_channel("prices:BTC").name) == "rt.prices.BTC"

    @pytest.mark.parametrize(("text", "namespace", "key"), VALID_CHANNELS)
    def test_group_is_a_valid_channels_group_name(self, text: str, namespace: str, key: str | None) -> None:
        group = channel_group(parse_channel(text).name)
        assert len(group) < BaseChannelLayer.MAX_NAME_LENGTH
        BaseChannelLayer().require_valid_group_name(group)

    def test_longest_possible_group_is_under_100(self) -> None:
        group = channel_group(parse_channel("a" * 24 + ":" + "." * 64).name)
        assert len(group) == 3 + 24 + 1 + 64 < 100
        BaseChannelLayer().require_valid_group_name(group)

    def test_group_mapping_is_injective(self) -> None:
        # Names built from the troublesome characters: dots in keys, underscores, lengths.
        namespaces = ["a", "a_b", "ab", "a_", "a1"]
        keys = [None, "b", "b.c", "c", ".b", "b.", "a.b", "_", "-", "..", "B"]
        names = [ChannelName(ns, key) for ns, key in itertools.product(namespaces, keys)]
        groups = {channel_group(c.name): c for c in names}
        assert len(groups) == len(names)
        # And every group round-trips: the first dot after "rt." separates namespace and key.
        for group, channel in groups.items():
            ns, _, key = group.removeprefix("rt.").partition(".")
            assert ChannelName(ns, key or None) == channel

    def test_channel_name_is_hashable_and_frozen(self) -> None:
        a, b = parse_channel("prices:BTC"), ChannelName("prices", "BTC")
        assert a == b and hash(a) == hash(b)
        with pytest.raises(AttributeError):
            a.key = "ETH"  # type: ignore[misc]


# --- since / max_rate / field helpers -------------------------------------------------


class TestParseSince:
    def test_none(self) -> None:
        assert parse_since(None) is None

    @pytest.mark.parametrize("seq", [0, 1, 10**12])
    def test_valid(self, seq: int) -> None:
        assert parse_since({"epoch": "9f2c01ab", "seq": seq}) == Since("9f2c01ab", seq)

    def test_future_seq_is_accepted_by_the_parser(self) -> None:
        # Whether a position is in the future is decided by recovery, not the parser.
        assert parse_since({"epoch": "e", "seq": 2**62}) == Since("e", 2**62)

    def test_unknown_fields_ignored(self) -> None:
        assert parse_since({"epoch": "e", "seq": 3, "foo": 1}) == Since("e", 3)

    @pytest.mark.parametrize("value", [[], "e:1", 1, True, ["e", 1]])
    def test_not_an_object(self, value: object) -> None:
        with pytest.raises(BadRequest) as exc:
            parse_since(value)
        assert exc.value.message == "since must be an object {epoch, seq}"

    @pytest.mark.parametrize("seq", [-1, -(2**63)])
    def test_negative_seq(self, seq: int) -> None:
        with pytest.raises(BadRequest) as exc:
            parse_since({"epoch": "e", "seq": seq})
        assert exc.value.message == "since.seq must not be negative"

    @pytest.mark.parametrize("seq", [None, 1.0, 1.5, "1", True, False, [1], math.nan, math.inf])
    def test_non_integer_seq(self, seq: object) -> None:
        with pytest.raises(BadRequest) as exc:
            parse_since({"epoch": "e", "seq": seq})
        assert exc.value.message == "since.seq must be an integer"

    def test_missing_seq(self) -> None:
        with pytest.raises(BadRequest):
            parse_since({"epoch": "e"})

    @pytest.mark.parametrize("epoch", [None, "", 1, 1.5, True, ["e"], {"e": 1}, "e" * 65])
    def test_unknown_epoch_shape(self, epoch: object) -> None:
        with pytest.raises(BadRequest) as exc:
            parse_since({"epoch": epoch, "seq": 1})
        assert exc.value.message == "since.epoch must be a non-empty string"

    def test_missing_epoch(self) -> None:
        with pytest.raises(BadRequest):
            parse_since({"seq": 1})

    def test_epoch_of_64_characters_is_accepted(self) -> None:
        assert parse_since({"epoch": "e" * 64, "seq": 1}) == Since("e" * 64, 1)

    def test_epoch_is_checked_before_seq(self) -> None:
        with pytest.raises(BadRequest) as exc:
            parse_since({"epoch": 1, "seq": -1})
        assert "epoch" in exc.value.message


class TestParseMaxRate:
    def test_absent_or_null(self) -> None:
        assert parse_max_rate({"type": "subscribe"}) is None
        assert parse_max_rate({"type": "subscribe", "max_rate": None}) is None

    @pytest.mark.parametrize(("value", "expected"), [(1, 1.0), (0.5, 0.5), (1000, 1000.0), (1e-9, 1e-9), (20.0, 20.0)])
    def test_valid(self, value: float, expected: float) -> None:
        rate = parse_max_rate({"max_rate": value})
        assert rate == expected and isinstance(rate, float)

    @pytest.mark.parametrize("value", [0, 0.0, -0.0, -1, -1e9])
    def test_zero_or_negative(self, value: float) -> None:
        with pytest.raises(BadRequest) as exc:
            parse_max_rate({"max_rate": value})
        assert exc.value.message == "max_rate must be greater than 0"

    @pytest.mark.parametrize("value", [1000.0001, 1001, 10**30, 1e308])
    def test_huge(self, value: float) -> None:
        with pytest.raises(BadRequest) as exc:
            parse_max_rate({"max_rate": value})
        assert exc.value.message == "max_rate must be at most 1000"

    @pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, True, False, "5", [5], {"v": 5}])
    def test_not_a_finite_number(self, value: object) -> None:
        with pytest.raises(BadRequest) as exc:
            parse_max_rate({"max_rate": value})
        assert exc.value.message == "max_rate must be a finite number"
        assert exc.value.code is ErrorCode.BAD_REQUEST

    @pytest.mark.parametrize("literal", ["1" + "0" * 400, "1e400", "-1e400"])
    def test_out_of_range_number_on_the_wire_is_bad_request(self, literal: str) -> None:
        # Such a frame never reaches parse_max_rate: decoding already rejects it.
        with pytest.raises(BadRequest) as exc:
            decode_frame('{"type":"subscribe","max_rate":' + literal + "}")
        assert exc.value.code is ErrorCode.BAD_REQUEST


class TestFieldHelpers:
    def test_require_str(self) -> None:
        assert require_str({"a": "x"}, "a") == "x"
        assert require_str({"a": "x" * 1024}, "a") == "x" * 1024

    @pytest.mark.parametrize("value", [None, 1, True, ["x"]])
    def test_require_str_wrong_type(self, value: object) -> None:
        with pytest.raises(BadRequest) as exc:
            require_str({"a": value}, "a")
        assert exc.value.message == "a must be a string"

    def test_require_str_too_long(self) -> None:
        with pytest.raises(BadRequest) as exc:
            require_str({"a": "xyz"}, "a", max_length=2)
        assert exc.value.message == "a longer than 2 characters"

    def test_optional_number(self) -> None:
        assert optional_number({}, "n") is None
        assert optional_number({"n": 3}, "n") == 3.0
        with pytest.raises(BadRequest):
            optional_number({"n": True}, "n")


# --- encoding -------------------------------------------------------------------------


PAYLOADS: list[Any] = [
    {"symbol": "BTC", "price": 97012.5},
    {"text": 'é€😀 \u2028\u2029 \\ " \n \t \x00 </script>'},
    [],
    None,
    "plain",
    12,
    {"nested": {"list": [1, 2.5, None, True], "empty": {}}},
]


class TestMessageFrame:
    @pytest.mark.parametrize("payload", PAYLOADS)
    def test_with_seq(self, payload: Any) -> None:
        text = message_frame("prices:BTC", encode_payload(payload), 42, "9f2c01ab")
        assert json.loads(text) == {
            "type": "message",
            "channel": "prices:BTC",
            "seq": 42,
            "epoch": "9f2c01ab",
            "data": payload,
        }

    @pytest.mark.parametrize("payload", PAYLOADS)
    def test_snapshot_flag(self, payload: Any) -> None:
        text = message_frame("prices:BTC", encode_payload(payload), 0, "e", snapshot=True)
        assert json.loads(text) == {
            "type": "message",
            "channel": "prices:BTC",
            "seq": 0,
            "epoch": "e",
            "snapshot": True,
            "data": payload,
        }

    @pytest.mark.parametrize("payload", PAYLOADS)
    def test_without_seq(self, payload: Any) -> None:
        text = message_frame("user", encode_payload(payload), None, None)
        assert json.loads(text) == {"type": "message", "channel": "user", "data": payload}

    def test_without_seq_ignores_snapshot_and_epoch(self) -> None:
        text = message_frame("user", "1", None, "e", snapshot=True)
        assert json.loads(text) == {"type": "message", "channel": "user", "data": 1}

    def test_channel_and_epoch_are_escaped(self) -> None:
        text = message_frame('we"ird\\chan\n', "{}", 1, 'ep"och')
        assert json.loads(text) == {
            "type": "message",
            "channel": 'we"ird\\chan\n',
            "seq": 1,
            "epoch": 'ep"och',
            "data": {},
        }

    def test_compact_and_field_order(self) -> None:
        assert (
            message_frame("c", '{"a":1}', 7, "e")
            == '{"type":"message","channel":"c","seq":7,"epoch":"e","data":{"a":1}}'
        )
        assert (
            message_frame("c", "1", 7, "e", snapshot=True)
            == '{"type":"message","channel":"c","seq":7,"epoch":"e","snapshot":true,"data":1}'
        )

    def test_payload_text_is_embedded_as_is(self) -> None:
        # The payload is encoded once by the publisher and never re-encoded.
        payload_json = '{"b":1, "a":2}'
        assert message_frame("c", payload_json, 1, "e").endswith(',"data":{"b":1, "a":2}}')


class TestEncoding:
    def test_encode_payload_unicode_is_utf8_not_escaped(self) -> None:
        assert encode_payload({"s": "é😀"}) == '{"s":"é😀"}'

    def test_encode_payload_non_str_keys(self) -> None:
        assert json.loads(encode_payload({1: "a"})) == {"1": "a"}

    @pytest.mark.parametrize("bad", [{1, 2}, object(), {"x": b"bytes"}, {"f": lambda: 1}, 2**70])
    def test_encode_payload_rejects_non_json(self, bad: Any) -> None:
        with pytest.raises(TypeError, match="payload is not JSON-serialisable"):
            encode_payload(bad)

    def test_dumps_is_compact(self) -> None:
        assert dumps({"a": [1, None], "b": "é"}) == '{"a":[1,null],"b":"é"}'

    def test_error_frame_with_and_without_details(self) -> None:
        assert error_frame(BadRequest("nope"), 3) == {
            "type": "error",
            "id": 3,
            "code": "bad_request",
            "message": "nope",
        }
        frame = error_frame(Forbidden(details={"channel": "wallet:0x1"}), None)
        assert frame == {
            "type": "error",
            "id": None,
            "code": "forbidden",
            "message": "not allowed",
            "details": {"channel": "wallet:0x1"},
        }

    def test_error_frame_empty_details_are_omitted(self) -> None:
        assert "details" not in error_frame(BadRequest(details={}), "x")


class TestErrors:
    @pytest.mark.parametrize(
        ("cls", "code"),
        [
            (BadRequest, "bad_request"),
            (UnknownType, "unknown_type"),
            (Forbidden, "forbidden"),
            (Unauthenticated, "unauthenticated"),
            (NotFound, "not_found"),
            (TooLarge, "too_large"),
            (RateLimited, "rate_limited"),
            (GatewayError, "internal"),
        ],
    )
    def test_default_codes(self, cls: type[GatewayError], code: str) -> None:
        err = cls()
        assert err.code.value == code
        assert err.message == cls.default_message
        assert str(err) == err.message

    def test_close_code(self) -> None:
        assert BadRequest().close_code is None
        assert RateLimited(close_code=CloseCode.RATE_LIMITED).close_code == 4429

    def test_code_override_is_per_instance(self) -> None:
        assert BadRequest(code=ErrorCode.UNSUPPORTED).code is ErrorCode.UNSUPPORTED
        assert BadRequest().code is ErrorCode.BAD_REQUEST

    def test_codes_match_protocol_doc(self) -> None:
        assert {c.value for c in ErrorCode} == {
            "bad_request",
            "unknown_type",
            "unsupported",
            "forbidden",
            "unauthenticated",
            "not_found",
            "too_large",
            "rate_limited",
            "already_subscribed",
            "not_subscribed",
            "subscription_limit",
            "unavailable",
            "internal",
        }
        assert CloseCode.HEARTBEAT_TIMEOUT == 4408
        assert CloseCode.SLOW_CONSUMER == 4409
        assert CloseCode.RATE_LIMITED == 4429
        assert CloseCode.UNAUTHENTICATED == 4401
        assert CloseCode.SERVICE_RESTART == 1012
