"""The key material a WeChat Pay API v3 merchant and the fake pay platform share.

A real merchant gets these from the WeChat Pay merchant platform: the merchant API private key
and its certificate serial number (requests are signed with it), the APIv3 key (notification
resources are AES-256-GCM encrypted with it), and the WeChat Pay platform public key and its
``PUB_KEY_ID_...`` (answers and notifications are signed with the platform's private key).
The fake makes both key pairs itself, so it also holds the platform private key.
"""

from __future__ import annotations

import json
import os
import secrets
import string
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Final

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

__all__ = ["DEFAULT_APPID", "DEFAULT_MCHID", "PayKeys"]

DEFAULT_MCHID: Final = "1900000109"
DEFAULT_APPID: Final = "wxd678efh567hg6787"

_MERCHANT_PRIVATE: Final = "merchant_private.pem"
_MERCHANT_PUBLIC: Final = "merchant_public.pem"
_PLATFORM_PRIVATE: Final = "platform_private.pem"
_PLATFORM_PUBLIC: Final = "platform_public.pem"
_SETTINGS: Final = "pay.json"
#: pay.json fields (the PEMs live in their own files).
_SETTINGS_FIELDS: Final = (
    "mchid",
    "appid",
    "apiv3_key",
    "merchant_serial_no",
    "platform_public_key_id",
)
_SECRET_MODE: Final = 0o600
_PUBLIC_MODE: Final = 0o644


@dataclass(frozen=True)
class PayKeys:
    """A merchant's WeChat Pay identity and keys, plus the platform key pair (PEM strings)."""

    mchid: str
    appid: str
    #: 32 ASCII characters (the AES-256-GCM key of notification resources).
    apiv3_key: str
    #: serial number of the merchant API certificate: 40 upper-case hex digits.
    merchant_serial_no: str
    #: PKCS8 PEM of the merchant API private key (RSA 2048).
    merchant_private_pem: str
    #: SubjectPublicKeyInfo PEM of the merchant API public key.
    merchant_public_pem: str
    #: id of the platform public key, ``PUB_KEY_ID_0114...`` (the ``Wechatpay-Serial`` of answers).
    platform_public_key_id: str
    #: PKCS8 PEM of the platform private key (only the fake has it).
    platform_private_pem: str
    #: SubjectPublicKeyInfo PEM of the platform public key (the merchant's ``public_key``).
    platform_public_pem: str

    @classmethod
    def generate(cls, *, mchid: str = DEFAULT_MCHID, appid: str = DEFAULT_APPID) -> PayKeys:
        """Fresh keys: two RSA 2048 key pairs, a random APIv3 key, serial and key id."""
        merchant_private, merchant_public = _rsa_pem_pair()
        platform_private, platform_public = _rsa_pem_pair()
        alphabet = string.ascii_letters + string.digits
        key_id_digits = f"{time.strftime('%Y%m%d')}{secrets.randbelow(10**6):06d}"
        return cls(
            mchid=mchid,
            appid=appid,
            apiv3_key="".join(secrets.choice(alphabet) for _ in range(32)),
            merchant_serial_no=secrets.token_hex(20).upper(),
            merchant_private_pem=merchant_private,
            merchant_public_pem=merchant_public,
            platform_public_key_id=f"PUB_KEY_ID_0114{mchid}{key_id_digits}",
            platform_private_pem=platform_private,
            platform_public_pem=platform_public,
        )

    def save(self, directory: str | os.PathLike[str]) -> None:
        """Write the keys into ``directory`` (private keys and pay.json readable by owner only)."""
        path = Path(directory)
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        _write(path / _MERCHANT_PRIVATE, self.merchant_private_pem, _SECRET_MODE)
        _write(path / _MERCHANT_PUBLIC, self.merchant_public_pem, _PUBLIC_MODE)
        _write(path / _PLATFORM_PRIVATE, self.platform_private_pem, _SECRET_MODE)
        _write(path / _PLATFORM_PUBLIC, self.platform_public_pem, _PUBLIC_MODE)
        settings = {name: value for name, value in asdict(self).items() if name in _SETTINGS_FIELDS}
        _write(path / _SETTINGS, json.dumps(settings, indent=2) + "\n", _SECRET_MODE)

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> PayKeys:
        """Read keys written by :meth:`save`."""
        path = Path(directory)
        settings = json.loads((path / _SETTINGS).read_text(encoding="utf-8"))
        return cls(
            **{name: str(settings[name]) for name in _SETTINGS_FIELDS},
            merchant_private_pem=(path / _MERCHANT_PRIVATE).read_text(encoding="ascii"),
            merchant_public_pem=(path / _MERCHANT_PUBLIC).read_text(encoding="ascii"),
            platform_private_pem=(path / _PLATFORM_PRIVATE).read_text(encoding="ascii"),
            platform_public_pem=(path / _PLATFORM_PUBLIC).read_text(encoding="ascii"),
        )

    @classmethod
    def load_or_create(
        cls, directory: str | os.PathLike[str], *, appid: str | None = None
    ) -> PayKeys:
        """The keys saved in ``directory``, generated and saved there first if absent.

        A given ``appid`` that differs from the saved one replaces it (and is saved).
        """
        if not (Path(directory) / _SETTINGS).exists():
            keys = cls.generate(appid=appid or DEFAULT_APPID)
        else:
            keys = cls.load(directory)
            if appid is None or appid == keys.appid:
                return keys
            keys = replace(keys, appid=appid)
        keys.save(directory)
        return keys


def _rsa_pem_pair() -> tuple[str, str]:
    """A new RSA 2048 key as (PKCS8 private PEM, SubjectPublicKeyInfo public PEM)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private.decode("ascii"), public.decode("ascii")


def _write(path: Path, text: str, mode: int) -> None:
    """Write ``text`` to ``path`` created with ``mode`` (an existing file is set to it first)."""
    if path.exists():
        path.chmod(mode)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(text)
