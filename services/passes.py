"""Check-in credentials, pure functions (no I/O).

- Venue code: `<activity>.<step>.<mac>`, an HMAC of the activity and the 30-second time step
  under the activity's own secret. The current and the previous step are accepted.
- Personal pass: `P1.<payload>.<signature>`, an Ed25519 signature over the member's id, unit and
  expiry, so an organiser's phone can verify it offline with the public key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass

import segno
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

STEP_S = 30


class CodeError(Exception):
    """`code` is the stable machine code the API answers."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def step_of(ts: float) -> int:
    return int(ts // STEP_S)


def venue_token(*, activity_id: int, secret: str, step: int) -> str:
    mac = hmac.new(secret.encode(), f"{activity_id}:{step}".encode(), hashlib.sha256).digest()[:12]
    return f"{activity_id}.{step}.{_b64(mac)}"


def check_venue_token(token: str, *, activity_id: int, secret: str, now_ts: float) -> None:
    """Raise CodeError: checkin_code_invalid (malformed / another activity), checkin_code_forged
    (bad MAC or a step not yet issued), checkin_code_expired (older than the previous step)."""
    parts = token.split(".")
    if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit() or len(token) > 80:
        raise CodeError("checkin_code_invalid")
    token_activity, step = int(parts[0]), int(parts[1])
    if token_activity != activity_id:
        raise CodeError("checkin_code_invalid")
    expected = venue_token(activity_id=activity_id, secret=secret, step=step)
    if not hmac.compare_digest(expected, token):
        raise CodeError("checkin_code_forged")
    current = step_of(now_ts)
    if step > current:
        raise CodeError("checkin_code_forged")
    if step < current - 1:
        raise CodeError("checkin_code_expired")


def qr_svg(data: str) -> str:
    return segno.make(data, error="m").svg_inline(scale=4)


@dataclass(frozen=True)
class Pass:
    member_id: int
    unit_id: int | None
    exp: int


class PassSigner:
    """Ed25519 key derived from the server secret: stable across processes and restarts."""

    def __init__(self, secret: str) -> None:
        seed = hmac.new(secret.encode(), b"zonehub/member-pass", hashlib.sha256).digest()
        self._key = Ed25519PrivateKey.from_private_bytes(seed)
        self.public_key: Ed25519PublicKey = self._key.public_key()

    @property
    def public_key_b64(self) -> str:
        return _b64(self.public_key.public_bytes(Encoding.Raw, PublicFormat.Raw))

    def issue(self, *, member_id: int, unit_id: int | None, exp: int) -> str:
        payload = _b64(json.dumps({"m": member_id, "u": unit_id, "exp": exp},
                                  separators=(",", ":")).encode())
        return f"P1.{payload}.{_b64(self._key.sign(payload.encode()))}"

    def verify(self, token: str, *, now_ts: float) -> Pass:
        """Raise CodeError pass_invalid (malformed), pass_forged, pass_expired."""
        parts = token.split(".")
        if len(parts) != 3 or parts[0] != "P1" or len(token) > 512:
            raise CodeError("pass_invalid")
        try:
            self.public_key.verify(_unb64(parts[2]), parts[1].encode())
        except (InvalidSignature, ValueError):
            raise CodeError("pass_forged") from None
        try:
            data = json.loads(_unb64(parts[1]))
            result = Pass(member_id=int(data["m"]),
                          unit_id=int(data["u"]) if data.get("u") is not None else None,
                          exp=int(data["exp"]))
        except (ValueError, KeyError, TypeError):
            raise CodeError("pass_invalid") from None
        if now_ts >= result.exp:
            raise CodeError("pass_expired")
        return result
