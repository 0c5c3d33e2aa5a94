"""TOTP against RFC 6238's own test vectors (Appendix B, SHA-1), and the one-use, ±1 step rules."""

from __future__ import annotations

import base64

import pytest

from dashboard import totp

# RFC 6238 Appendix B: the SHA-1 key is the ASCII "12345678901234567890", codes of 8 digits.
RFC_SECRET = base64.b32encode(b"12345678901234567890").decode()


@pytest.mark.parametrize(("at", "code"), [
    (59, "94287082"), (1111111109, "07081804"), (1111111111, "14050471"),
    (1234567890, "89005924"), (2000000000, "69279037"), (20000000000, "65353130"),
])
def test_rfc_6238_vectors(at: int, code: str) -> None:
    assert totp.code_at(RFC_SECRET, at, digits=8) == code


def test_six_digits_are_the_last_six_of_the_rfc_code() -> None:
    assert totp.code_at(RFC_SECRET, 59) == "287082"


def test_one_step_of_drift_either_way_and_no_more() -> None:
    at = 1111111111
    step = at // 30
    for offset, accepted in ((-60, False), (-30, True), (0, True), (30, True), (60, False)):
        code = totp.code_at(RFC_SECRET, at + offset)
        assert (totp.verify(RFC_SECRET, code, at=at) is not None) is accepted, offset
    assert totp.verify(RFC_SECRET, totp.code_at(RFC_SECRET, at), at=at) == step


def test_a_used_code_does_not_work_again() -> None:
    at = 1234567890
    code = totp.code_at(RFC_SECRET, at)
    step = totp.verify(RFC_SECRET, code, at=at)
    assert step is not None
    assert totp.verify(RFC_SECRET, code, at=at, last_step=step) is None


def test_garbage_is_refused() -> None:
    for code in ("", "12345", "abcdef", "1234567"):
        assert totp.verify(RFC_SECRET, code, at=59) is None


def test_a_new_secret_and_its_otpauth_uri() -> None:
    secret = totp.new_secret()
    assert len(base64.b32decode(secret + "=" * (-len(secret) % 8))) == 20
    uri = totp.otpauth_uri(secret, "ops@example.com")
    assert uri.startswith("otpauth://totp/ScanCharge%3Aops%40example.com?secret=" + secret)
    assert "issuer=ScanCharge" in uri and "digits=6" in uri and "period=30" in uri
