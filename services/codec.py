"""Encrypts every payload before it leaves the process, so Temporal's histories and Web UI never
hold case data in the clear: caseworkers' free text (reasons, notes), dates and references.

AES-256-GCM (``cryptography``). Each payload records the id of the key that sealed it, so keys
can be rotated: seal with the current key, open with the current or any retired key. Payloads
that were never sealed pass through unchanged.
"""

from __future__ import annotations

import base64
import hashlib
import os
from typing import Iterable, Sequence

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"


def parse_key(text: str) -> bytes:
    """A key as given in settings: 32 bytes, base64-encoded (``ehc keygen`` makes one)."""
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except ValueError:
        raise ValueError("the payload key is not base64: make one with `ehc keygen`") from None
    if len(key) != 32:
        raise ValueError("the payload key must be 32 bytes (base64): make one with `ehc keygen`")
    return key


def key_id(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:16]


class EncryptionCodec(PayloadCodec):
    def __init__(self, key: bytes, retired: Iterable[bytes] = ()) -> None:
        self._id = key_id(key).encode()
        self._seal = AESGCM(key)
        self._open = {key_id(k).encode(): AESGCM(k) for k in (key, *retired)}

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        out = []
        for p in payloads:
            nonce = os.urandom(12)
            sealed = self._seal.encrypt(nonce, p.SerializeToString(), None)
            out.append(Payload(metadata={"encoding": ENCODING, KEY_ID: self._id},
                               data=nonce + sealed))
        return out

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        out = []
        for p in payloads:
            if p.metadata.get("encoding") != ENCODING:
                out.append(p)
                continue
            cipher = self._open.get(p.metadata.get(KEY_ID, b""))
            if cipher is None:
                raise ValueError(f"payload sealed with unknown key id "
                                 f"{p.metadata.get(KEY_ID, b'').decode()}: add it to "
                                 "EHC_PAYLOAD_RETIRED_KEYS")
            plain = Payload()
            plain.ParseFromString(cipher.decrypt(p.data[:12], p.data[12:], None))
            out.append(plain)
        return out
