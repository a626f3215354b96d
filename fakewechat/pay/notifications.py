"""Notifications of the pay API: what WeChat Pay POSTs to the merchant's notify_url.

The body is an envelope (``id``, ``create_time``, ``event_type``, ``summary``) whose
``resource`` is the plaintext encrypted with AEAD_AES_256_GCM under the APIv3 key (associated
data: the ``original_type``); the request is signed like an answer, in the ``Wechatpay-*``
headers.
"""

from __future__ import annotations

import base64
import secrets
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from fakewechat.answers import compact_json
from fakewechat.pay.clock import now, rfc3339
from fakewechat.pay.signatures import Signer, nonce

__all__ = ["build", "event_id"]

JSON = dict[str, Any]


def event_id() -> str:
    """A new notification id, ``EV-<time><8 digits>``."""
    return f"EV-{now():%Y%m%d%H%M%S}{secrets.randbelow(10**8):08d}"


def build(
    signer: Signer,
    *,
    event_type: str,
    summary: str,
    original_type: str,
    plaintext: JSON,
    copies_id: str | None,
    tamper: JSON,
    resign: bool,
    forge: bool,
    timestamp: int | None,
) -> tuple[dict[str, str], bytes]:
    """Headers and body of a notification encrypting ``plaintext``.

    ``copies_id``: its id (a re-delivered copy), else a new one. ``tamper``: fields replacing
    those of the plaintext, signed when ``resign``, else put in after signing. ``forge`` and
    ``timestamp``: as for :meth:`Signer.headers`. (``FakePay.notification`` says when to use
    which.)
    """
    envelope = {
        "id": copies_id or event_id(),
        "create_time": rfc3339(now()),
        "resource_type": "encrypt-resource",
        "event_type": event_type,
        "summary": summary,
    }
    resource_nonce = nonce(12)
    aes = AESGCM(signer.keys.apiv3_key.encode("ascii"))

    def body_of(content: JSON) -> bytes:
        ciphertext = aes.encrypt(
            resource_nonce.encode(), compact_json(content), original_type.encode()
        )
        resource = {
            "original_type": original_type,
            "algorithm": "AEAD_AES_256_GCM",
            "ciphertext": base64.b64encode(ciphertext).decode("ascii"),
            "associated_data": original_type,
            "nonce": resource_nonce,
        }
        return compact_json({**envelope, "resource": resource})

    sent = body_of({**plaintext, **tamper})
    signed = sent if resign else body_of(plaintext)
    headers = signer.headers(signed, forge=forge, timestamp=timestamp)
    headers["Content-Type"] = "application/json"
    return headers, sent
