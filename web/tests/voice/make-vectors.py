#!/usr/bin/env python3
"""Writes handshake-vectors.json: fixed vectors for the browser's voice
crypto, computed by an independent implementation (Python `cryptography`)
of the Rust side's algorithm (src/voice/crypto.rs, packet.rs, report.rs)
and of the v1.2 spec (docs/protocol.md, media_commit / media_reveal).
The keys are RFC 7748's Alice (caller) and Bob (callee).
Run: python3 web/tests/voice/make-vectors.py > web/tests/voice/handshake-vectors.json
"""
import hashlib, json, struct
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives import hashes, serialization

CALLER_SECRET = bytes.fromhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
CALLEE_SECRET = bytes.fromhex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb")
CALL_ID = "c-7f3a91e2"

def public(secret):
    return X25519PrivateKey.from_private_bytes(secret).public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)

def hkdf(ikm, info, n):
    return HKDF(algorithm=hashes.SHA256(), length=n, salt=None, info=info).derive(ikm)

def six(digest8):
    return "%06d" % (struct.unpack(">Q", digest8[:8])[0] % 1_000_000)

caller_pub, callee_pub = public(CALLER_SECRET), public(CALLEE_SECRET)
shared = X25519PrivateKey.from_private_bytes(CALLER_SECRET).exchange(
    X25519PublicKey.from_public_bytes(callee_pub))
cid = CALL_ID.encode()
info = b"softphone voice v1" + caller_pub + callee_pub + cid
c2e = hkdf(shared, info + b" caller to callee", 32)
e2c = hkdf(shared, info + b" callee to caller", 32)
low, high = sorted([caller_pub, callee_pub])
code_v11 = six(hashlib.sha256(b"softphone safety code v1" + low + high).digest())
commit = hashlib.sha256(b"softphone commit v1.2" + caller_pub + cid).digest()
code_v12 = six(hkdf(shared, b"softphone safety code v1.2" + commit + caller_pub + callee_pub + cid, 8))

def seal(key, flags, seq, timestamp, body):
    header = struct.pack(">BBII", 1, flags, seq, timestamp)
    nonce = b"\0" * 8 + struct.pack(">I", seq)
    return header + ChaCha20Poly1305(key).encrypt(nonce, body, header)

report = struct.pack(">IIHB", 1234, 0xFFFFFFFF, 0, 255)
opus = bytes(range(40))
packets = [
    {"direction": "caller to callee", "flags": 0, "seq": 0, "timestamp": 0,
     "body": opus.hex(), "packet": seal(c2e, 0, 0, 0, opus).hex()},
    {"direction": "callee to caller", "flags": 1, "seq": 0x01020304, "timestamp": 0xA0B0C0D0,
     "body": (report + opus).hex(), "packet": seal(e2c, 1, 0x01020304, 0xA0B0C0D0, report + opus).hex()},
    {"direction": "caller to callee", "flags": 2, "seq": 7, "timestamp": 7 * 960,
     "body": b"\xf8\xff\xfe".hex(), "packet": seal(c2e, 2, 7, 7 * 960, b"\xf8\xff\xfe").hex()},
]
print(json.dumps({
    "about": "computed by web/tests/voice/make-vectors.py (Python cryptography) from the Rust algorithm",
    "call_id": CALL_ID,
    "caller_secret": CALLER_SECRET.hex(), "callee_secret": CALLEE_SECRET.hex(),
    "caller_public": caller_pub.hex(), "callee_public": callee_pub.hex(),
    "shared_secret": shared.hex(),
    "caller_to_callee": c2e.hex(), "callee_to_caller": e2c.hex(),
    "safety_code_v1_1": code_v11,
    "media_commit": commit.hex(),
    "safety_code_v1_2": code_v12,
    "packets": packets,
}, indent=2))
