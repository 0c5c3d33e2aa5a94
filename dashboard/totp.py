"""TOTP (RFC 6238): HMAC-SHA1, 30-second steps, 6 digits, one step of clock drift either way.

The standard library is all it takes (hmac, hashlib, base64); every authenticator app
(Google Authenticator, Aegis, 1Password, …) reads the otpauth:// URI as a QR code.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
import time
from urllib.parse import quote

STEP_SECONDS = 30
DIGITS = 6
DRIFT_STEPS = 1


def new_secret() -> str:
    """160 random bits (RFC 4226's recommended key length), base32 without padding."""
    return base64.b32encode(secrets.token_bytes(20)).decode().rstrip("=")


def _key(secret: str) -> bytes:
    cleaned = secret.replace(" ", "").upper()
    return base64.b32decode(cleaned + "=" * (-len(cleaned) % 8))


def hotp(key: bytes, counter: int, digits: int = DIGITS) -> str:
    """RFC 4226: the HMAC-SHA1 of the counter, dynamically truncated to `digits` digits."""
    mac = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    number = struct.unpack(">I", mac[offset:offset + 4])[0] & 0x7FFFFFFF
    return str(number % 10 ** digits).zfill(digits)


def code_at(secret: str, at: float, digits: int = DIGITS) -> str:
    return hotp(_key(secret), int(at) // STEP_SECONDS, digits)


def verify(secret: str, code: str, *, at: float | None = None,
           last_step: int | None = None) -> int | None:
    """The time step the code belongs to (now ± DRIFT_STEPS), or None. A step at or before
    `last_step` (a code already used) does not count, so a code works once."""
    code = "".join(code.split())
    if len(code) != DIGITS or not code.isdigit():
        return None
    now_step = int(time.time() if at is None else at) // STEP_SECONDS
    key = _key(secret)
    matched = None
    for step in range(now_step - DRIFT_STEPS, now_step + DRIFT_STEPS + 1):
        # Every candidate is computed and compared in constant time, a match or not.
        if hmac.compare_digest(hotp(key, step), code) and matched is None:
            matched = step
    if matched is None or (last_step is not None and matched <= last_step):
        return None
    return matched


def otpauth_uri(secret: str, account: str, issuer: str = "ScanCharge") -> str:
    label = quote(f"{issuer}:{account}")
    return (f"otpauth://totp/{label}?secret={secret}&issuer={quote(issuer)}"
            f"&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}")
