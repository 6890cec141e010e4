"""Just enough OpenPGP (RFC 4880) to build a keyring for gpgv from rkt's trusted key files.

gpgv reads only binary keyrings, and rkt's key files are usually armored; and rkt insists that
a key file is named after its key's fingerprint. Both need only framing, no cryptography:
ASCII armor is base64 with a CRC-24, packets are tag + length + body, and a v4 fingerprint is
SHA-1 over the public-key packet body. Doing that here avoids running `gpg --dearmor` (which
wants a home directory and may start an agent) once per key.

Only what a key file may hold is accepted: bounded input, definite packet lengths, a public
key packet first. As rkt did, only the first key (the primary key with its user IDs,
signatures and subkeys, up to the next primary key) of a file is used.
"""

from __future__ import annotations

import base64
import binascii
import hashlib

from ..errors import FormatError

MAX_KEY_FILE = 1 << 20
TAG_PUBLIC_KEY = 6
TAG_SECRET_KEY = 5


def _crc24(data: bytes) -> int:
    crc = 0xB704CE
    for byte in data:
        crc ^= byte << 16
        for _ in range(8):
            crc <<= 1
            if crc & 0x1000000:
                crc ^= 0x1864CFB
    return crc & 0xFFFFFF


def dearmor(data: bytes) -> bytes:
    """The binary content of the first armored block; binary input is returned as it is."""
    if data[:1] and data[0] & 0x80:
        return data
    lines = data.decode("ascii", errors="replace").splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip().startswith("-----BEGIN PGP"))
    except StopIteration:
        raise FormatError("neither an armored nor a binary OpenPGP key") from None
    body: list[str] = []
    checksum = None
    in_headers = True
    for line in lines[start + 1:]:
        line = line.strip()
        if line.startswith("-----END PGP"):
            break
        if in_headers:
            if not line:
                in_headers = False
                continue
            if ": " in line:
                continue
            in_headers = False
        if line.startswith("=") and len(line) == 5:
            checksum = line[1:]
        elif line:
            body.append(line)
    else:
        raise FormatError("armored key has no END line")
    try:
        raw = base64.b64decode("".join(body), validate=True)
    except (binascii.Error, ValueError):
        raise FormatError("armored key is not valid base64") from None
    if checksum is not None:
        try:
            want = int.from_bytes(base64.b64decode(checksum, validate=True), "big")
        except (binascii.Error, ValueError):
            raise FormatError("armor checksum is not valid base64") from None
        if want != _crc24(raw):
            raise FormatError("armor checksum does not match (the key file is damaged)")
    return raw


def packets(data: bytes):
    """(tag, whole packet bytes, body) for each packet."""
    pos = 0
    while pos < len(data):
        start = pos
        first = data[pos]
        if not first & 0x80:
            raise FormatError(f"not an OpenPGP packet at byte {pos}")
        if first & 0x40:  # new format
            tag = first & 0x3F
            if pos + 1 >= len(data):
                raise FormatError("truncated packet header")
            octet = data[pos + 1]
            if octet < 192:
                length, pos = octet, pos + 2
            elif octet < 224:
                if pos + 2 >= len(data):
                    raise FormatError("truncated packet header")
                length, pos = ((octet - 192) << 8) + data[pos + 2] + 192, pos + 3
            elif octet == 255:
                if pos + 6 > len(data):
                    raise FormatError("truncated packet header")
                length, pos = int.from_bytes(data[pos + 2:pos + 6], "big"), pos + 6
            else:
                raise FormatError("partial-length packet in a key (not allowed)")
        else:  # old format
            tag, kind = (first >> 2) & 0x0F, first & 0x03
            if kind == 3:
                raise FormatError("indeterminate-length packet in a key (not allowed)")
            size = 1 << kind
            if pos + 1 + size > len(data):
                raise FormatError("truncated packet header")
            length = int.from_bytes(data[pos + 1:pos + 1 + size], "big")
            pos += 1 + size
        end = pos + length
        if end > len(data):
            raise FormatError("truncated OpenPGP packet")
        yield tag, data[start:end], data[pos:end]
        pos = end


def first_key(data: bytes) -> tuple[str, bytes]:
    """(fingerprint as lower-case hex, the binary packets of the first key) of a key file's
    content, armored or binary."""
    if len(data) > MAX_KEY_FILE:
        raise FormatError(f"key file is larger than {MAX_KEY_FILE} bytes")
    raw = dearmor(data)
    out = bytearray()
    fingerprint = None
    for tag, whole, body in packets(raw):
        if fingerprint is None:
            if tag == TAG_SECRET_KEY:
                raise FormatError("the key file holds a secret key; trust only public keys")
            if tag != TAG_PUBLIC_KEY:
                raise FormatError(f"the key file starts with packet type {tag}, not a public key")
            fingerprint = v4_fingerprint(body)
        elif tag in (TAG_PUBLIC_KEY, TAG_SECRET_KEY):
            break
        out += whole
    if fingerprint is None:
        raise FormatError("the key file is empty")
    return fingerprint, bytes(out)


def v4_fingerprint(body: bytes) -> str:
    if not body or body[0] != 4:
        version = body[0] if body else "?"
        raise FormatError(f"version {version} OpenPGP key; only version 4 keys are supported")
    return hashlib.sha1(b"\x99" + len(body).to_bytes(2, "big") + body).hexdigest()
