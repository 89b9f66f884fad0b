"""The one signature scheme (SPEC section 0), checked against vectors computed here from the SPEC text."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from topup import signing
from topup.signing import SignatureError, signature, signed_headers, verify, verify_parts

SECRET = "merchant-secret-0001"
NOW = 1_750_000_000


def spec_signature(secret: str, ts: str, method: str, target: str, body: bytes) -> str:
    """hex(HMAC-SHA256(secret, "<timestamp>\\n<METHOD>\\n<path with query>\\n<raw body>"))."""
    message = ts.encode() + b"\n" + method.upper().encode() + b"\n" + target.encode() + b"\n" + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


VECTORS = [
    ("1750000000", "POST", "/v1/orders", b'{"merchant_order_id":"A-1001","product_code":"airtime.50"}'),
    ("1750000000", "GET", "/v1/orders?merchant_order_id=A-1001&limit=3", b""),
    ("1", "get", "/v1/balance", b""),  # the method is upper-cased
    ("1750000000", "POST", "/callbacks/topup-json/supA", '{"ref":"订单-1"}'.encode()),
    ("1750000000", "PUT", "/x", b"\x00\xff\n\n"),  # arbitrary bytes, newlines in the body
]


@pytest.mark.parametrize(("ts", "method", "target", "body"), VECTORS)
def test_signature_matches_the_spec(ts: str, method: str, target: str, body: bytes) -> None:
    expected = spec_signature(SECRET, ts, method, target, body)
    assert signature(SECRET, ts, method, target, body) == expected
    assert signature(SECRET, int(ts), method, target, body) == expected
    assert len(expected) == 64 and expected == expected.lower()


def test_a_fixed_vector() -> None:
    # Computed once by hand from the SPEC formula; pins the scheme against accidental change.
    msg = b"1750000000\nPOST\n/v1/orders\n{}"
    assert signature("s3cret", 1750000000, "POST", "/v1/orders", b"{}") == (
        hmac.new(b"s3cret", msg, hashlib.sha256).hexdigest()
    )


def test_everything_is_covered() -> None:
    base = signature(SECRET, NOW, "POST", "/v1/orders", b"{}")
    assert signature("other-secret", NOW, "POST", "/v1/orders", b"{}") != base
    assert signature(SECRET, NOW + 1, "POST", "/v1/orders", b"{}") != base
    assert signature(SECRET, NOW, "PUT", "/v1/orders", b"{}") != base
    assert signature(SECRET, NOW, "POST", "/v1/orders?x=1", b"{}") != base
    assert signature(SECRET, NOW, "POST", "/v1/orders", b"{ }") != base


def test_signed_headers_round_trip() -> None:
    body = b'{"a":1}'
    h = signed_headers(SECRET, "post", "/v1/orders", body, NOW + 0.9)
    assert h == {
        "X-Timestamp": str(NOW),
        "X-Signature": spec_signature(SECRET, str(NOW), "POST", "/v1/orders", body),
    }
    verify(SECRET, h, "POST", "/v1/orders", body, NOW)


def headers(ts: int | str, body: bytes = b"", target: str = "/v1/balance", method: str = "GET") -> dict:
    return {"X-Timestamp": str(ts), "X-Signature": spec_signature(SECRET, str(ts), method, target, body)}


@pytest.mark.parametrize("skew", [0, 1, 299, 300, -1, -299, -300])
def test_timestamps_within_300s_are_accepted(skew: int) -> None:
    verify(SECRET, headers(NOW + skew), "GET", "/v1/balance", b"", NOW)


@pytest.mark.parametrize("skew", [301, -301, 3600, -86400, NOW])
def test_stale_or_future_timestamps_are_rejected(skew: int) -> None:
    with pytest.raises(SignatureError, match="window"):
        verify(SECRET, headers(NOW + skew), "GET", "/v1/balance", b"", NOW)


def test_boundary_with_a_fractional_clock() -> None:
    # The receiver's clock is a float; 300.5 s away is more than 300 s.
    verify(SECRET, headers(NOW), "GET", "/v1/balance", b"", NOW + 300.0)
    with pytest.raises(SignatureError):
        verify(SECRET, headers(NOW), "GET", "/v1/balance", b"", NOW + 300.5)


@pytest.mark.parametrize(
    "h",
    [
        {},
        {"X-Timestamp": str(NOW)},
        {"X-Signature": "ab" * 32},
        {"X-Timestamp": "", "X-Signature": "ab" * 32},
        {"X-Timestamp": str(NOW), "X-Signature": ""},
    ],
)
def test_missing_headers(h: dict) -> None:
    with pytest.raises(SignatureError, match="missing"):
        verify(SECRET, h, "GET", "/v1/balance", b"", NOW)


def test_lower_case_header_names_are_read() -> None:
    h = {k.lower(): v for k, v in headers(NOW).items()}
    verify(SECRET, h, "GET", "/v1/balance", b"", NOW)


@pytest.mark.parametrize(
    "ts",
    [
        "abc",
        "1.5e9",
        "1750000000.0",
        "0x10",
        "",
        "1_750_000_000",
        "+1750000000",
        "１７５０００００００",
        "17 5",
    ],
)
def test_non_integer_timestamp(ts: str) -> None:
    # Even correctly signed, a timestamp that is not plain unix seconds is refused.
    sig = spec_signature(SECRET, ts, "GET", "/v1/balance", b"")
    with pytest.raises(SignatureError, match="integer"):
        verify_parts(SECRET, ts, sig, "GET", "/v1/balance", b"", NOW)


def test_integer_timestamp_from_json() -> None:
    # The WebSocket auth message carries the timestamp as a JSON number.
    sig = spec_signature(SECRET, str(NOW), "GET", "/v1/stream", b"")
    verify_parts(SECRET, NOW, sig, "GET", "/v1/stream", b"", NOW)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda h: {**h, "X-Signature": "0" * 64},
        lambda h: {**h, "X-Signature": h["X-Signature"][:-1]},
        lambda h: {**h, "X-Signature": h["X-Signature"] + "00"},
        lambda h: {**h, "X-Signature": "not-hex"},
        lambda h: {**h, "X-Timestamp": str(NOW - 1)},  # signed one timestamp, sent another
    ],
)
def test_wrong_signature(mutate) -> None:
    with pytest.raises(SignatureError, match="mismatch"):
        verify(SECRET, mutate(headers(NOW)), "GET", "/v1/balance", b"", NOW)


def test_signature_is_checked_against_the_request_as_received() -> None:
    body = b'{"amount":1}'
    h = headers(NOW, body, "/v1/orders", "POST")
    verify(SECRET, h, "POST", "/v1/orders", body, NOW)
    for method, target, b in [
        ("POST", "/v1/orders", b'{"amount":2}'),
        ("POST", "/v1/orders?x=1", body),
        ("PUT", "/v1/orders", body),
    ]:
        with pytest.raises(SignatureError):
            verify(SECRET, h, method, target, b, NOW)
    with pytest.raises(SignatureError):
        verify("another-secret-000", h, "POST", "/v1/orders", body, NOW)


def test_upper_case_hex_is_accepted() -> None:
    h = headers(NOW)
    verify(SECRET, {**h, "X-Signature": h["X-Signature"].upper()}, "GET", "/v1/balance", b"", NOW)


def test_compare_is_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = hmac.compare_digest

    def spy(a, b):  # type: ignore[no-untyped-def]
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(signing.hmac, "compare_digest", spy)
    verify(SECRET, headers(NOW), "GET", "/v1/balance", b"", NOW)
    assert calls, "signatures must be compared with hmac.compare_digest"
