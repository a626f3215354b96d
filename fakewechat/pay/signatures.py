"""Signatures of the pay API (``WECHATPAY2-SHA256-RSA2048``, RSA PKCS#1 v1.5 over SHA-256).

The merchant signs each request in its Authorization header with its API key; the platform
signs each answer and notification in the ``Wechatpay-*`` headers with the platform key. The
signed message is the request line, timestamp, nonce and body, each followed by a newline.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import string
import time
from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from fakewechat.pay.errors import sign_error
from fakewechat.paykeys import PayKeys

__all__ = ["SIGNATURE_TYPE", "Signer", "nonce"]

SIGNATURE_TYPE: Final = "WECHATPAY2-SHA256-RSA2048"

_AUTH_PARAM: Final = re.compile(r'(\w+)="([^"]*)"')
_AUTH_FIELDS: Final = frozenset({"mchid", "nonce_str", "signature", "timestamp", "serial_no"})
#: requests signed further than this from now are refused (like WeChat's 5 minutes).
_MAX_CLOCK_SKEW_S: Final = 300
_NONCE_ALPHABET: Final = string.ascii_uppercase + string.digits


def nonce(length: int) -> str:
    """A random string of upper-case letters and digits."""
    return "".join(secrets.choice(_NONCE_ALPHABET) for _ in range(length))


class Signer:
    """The platform's side of the signatures of one merchant's API.

    Holds the merchant's public key (to verify requests), the platform private key (to sign
    answers and notifications) and, made on first use, a forger's key that is not the
    platform's (to sign forged notifications).
    """

    def __init__(self, keys: PayKeys) -> None:
        self.keys = keys
        self._merchant_key = _load_public(keys.merchant_public_pem)
        self._platform_key = _load_private(keys.platform_private_pem)
        self._forger_key: rsa.RSAPrivateKey | None = None

    def verify_request(
        self, method: str, path: str, authorization: str | None, body: bytes
    ) -> None:
        """Check the merchant's Authorization of a request; PayError 401 SIGN_ERROR if wrong.

        ``path`` is the raw path with its query string, as the merchant signed it.
        """
        scheme, _, params_text = (authorization or "").partition(" ")
        params = dict(_AUTH_PARAM.findall(params_text))
        if scheme != SIGNATURE_TYPE or not params.keys() >= _AUTH_FIELDS:
            raise sign_error("Http头Authorization值格式错误，请参考签名规则")
        if params["mchid"] != self.keys.mchid:
            raise sign_error("Authorization中的商户号不存在或与商户不匹配")
        if params["serial_no"].upper() != self.keys.merchant_serial_no:
            raise sign_error("商户证书序列号有误，请核实后再试")
        timestamp = params["timestamp"]
        if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > _MAX_CLOCK_SKEW_S:
            raise sign_error("Authorization中的时间戳与当前时间相差过大")
        message = f"{method}\n{path}\n{timestamp}\n{params['nonce_str']}\n".encode() + body + b"\n"
        if not _verify(self._merchant_key, message, params["signature"]):
            raise sign_error("错误的签名，验签失败")

    def headers(
        self, body: bytes, *, forge: bool = False, timestamp: int | None = None
    ) -> dict[str, str]:
        """The ``Wechatpay-*`` headers signing ``body`` with the platform key.

        ``forge``: signed with a key that is not the platform's. ``timestamp``: the
        ``Wechatpay-Timestamp`` (default now).
        """
        key = self._forger() if forge else self._platform_key
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        nonce_str = nonce(32)
        message = f"{stamp}\n{nonce_str}\n".encode() + body + b"\n"
        signature = key.sign(message, padding.PKCS1v15(), hashes.SHA256())
        return {
            "Wechatpay-Timestamp": stamp,
            "Wechatpay-Nonce": nonce_str,
            "Wechatpay-Signature": base64.b64encode(signature).decode("ascii"),
            "Wechatpay-Serial": self.keys.platform_public_key_id,
            "Wechatpay-Signature-Type": SIGNATURE_TYPE,
        }

    def _forger(self) -> rsa.RSAPrivateKey:
        """A key that is not the platform's, made on first use."""
        if self._forger_key is None:
            self._forger_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return self._forger_key


def _load_public(pem: str) -> rsa.RSAPublicKey:
    key = serialization.load_pem_public_key(pem.encode("ascii"))
    if not isinstance(key, rsa.RSAPublicKey):
        raise TypeError("not an RSA public key")
    return key


def _load_private(pem: str) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(pem.encode("ascii"), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise TypeError("not an RSA private key")
    return key


def _verify(key: rsa.RSAPublicKey, message: bytes, signature: str) -> bool:
    try:
        key.verify(base64.b64decode(signature, validate=True), message, padding.PKCS1v15(),
                   hashes.SHA256())
    except (binascii.Error, InvalidSignature):
        return False
    return True
