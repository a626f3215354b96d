"""Pure: signed session tokens, venue codes and personal passes."""

from __future__ import annotations

import pytest

from services import passes, tokens

KEY = tokens.derive_key("s" * 40, "session")


def test_a_token_verifies_with_its_key_only_and_expires() -> None:
    token = tokens.sign(KEY, {"sub": 7, "exp": 1_000})
    assert tokens.verify(KEY, token, now=999)["sub"] == 7
    with pytest.raises(tokens.Expired):
        tokens.verify(KEY, token, now=1_000)
    with pytest.raises(tokens.BadSignature):
        tokens.verify(tokens.derive_key("s" * 40, "other-purpose"), token, now=0)
    body, mac = token.split(".")
    with pytest.raises(tokens.BadSignature):
        tokens.verify(KEY, body[:-2] + "AA." + mac, now=0)
    for garbage in ("", "abc", ".", "a.", "x" * 5000):
        with pytest.raises(tokens.BadSignature):
            tokens.verify(KEY, garbage, now=0)


def test_the_venue_code_accepts_this_and_the_last_step_only() -> None:
    secret, now = "venue-secret", 30 * 1000 + 5
    step = passes.step_of(now)
    current = passes.venue_token(activity_id=3, secret=secret, step=step)
    passes.check_venue_token(current, activity_id=3, secret=secret, now_ts=now)
    passes.check_venue_token(passes.venue_token(activity_id=3, secret=secret, step=step - 1),
                             activity_id=3, secret=secret, now_ts=now)
    cases = {
        passes.venue_token(activity_id=3, secret=secret, step=step - 2): "checkin_code_expired",
        passes.venue_token(activity_id=3, secret=secret, step=step + 1): "checkin_code_forged",
        passes.venue_token(activity_id=3, secret="another", step=step): "checkin_code_forged",
        passes.venue_token(activity_id=4, secret=secret, step=step): "checkin_code_invalid",
        "3.x.y": "checkin_code_invalid",
    }
    for token, code in cases.items():
        with pytest.raises(passes.CodeError) as caught:
            passes.check_venue_token(token, activity_id=3, secret=secret, now_ts=now)
        assert caught.value.code == code, token


def test_a_personal_pass_verifies_offline_and_refuses_forgery() -> None:
    signer, other = passes.PassSigner("k" * 40), passes.PassSigner("j" * 40)
    token = signer.issue(member_id=5, unit_id=2, exp=2_000)
    assert signer.verify(token, now_ts=1_999) == passes.Pass(member_id=5, unit_id=2, exp=2_000)
    for bad, code in [(token, "pass_expired"), (other.issue(member_id=5, unit_id=2, exp=9_999), "pass_forged"),
                      ("P1.x", "pass_invalid"), ("P2" + token[2:], "pass_invalid")]:
        with pytest.raises(passes.CodeError) as caught:
            signer.verify(bad, now_ts=2_000)
        assert caught.value.code == code
    assert signer.public_key_b64 == passes.PassSigner("k" * 40).public_key_b64  # stable
