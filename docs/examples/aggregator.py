#!/usr/bin/env python3
"""An aggregator's side of flexgate's wire protocol (PROTOCOL.md §1-3) with no flexgate code.

  sign           sign a DispatchOrder from arguments; prints the envelope JSON to publish on
                 flex/v1/gw/{gateway}/order (QoS 1), e.g. with mosquitto_pub -q 1 -s
  verify-status  read an OrderStatus envelope (from flex/v1/gw/{gateway}/ack) on stdin, check its
                 form and recover its signer; exit 0 when the gateway signed it, 1 otherwise

Needs Debian's python3 with python3-ecdsa (signing, RFC 6979) and python3-pycryptodome (keccak-256).
The EIP-712 encoding is written out by hand below: every field is one 32-byte word.

  python3 aggregator.py sign --key 0x… --chain-id 31337 --gateway 0x… --signal 1 --value 3000 \\
      --duration-ms 900000 [--start 0] [--randomize-ms 0] [--ramp-ms 0] [--price-micros 0] \\
      [--order-id 0x…] [--modification 0] [--sequence N] [--issued-at MS] [--valid-until MS]
  python3 aggregator.py verify-status --gateway 0x… --chain-id 31337 < status.json
"""
import argparse
import hashlib
import json
import os
import re
import sys
import time

from Cryptodome.Hash import keccak  # Debian python3-pycryptodome (pip: pycryptodomex)
from ecdsa import SECP256k1, SigningKey  # Debian python3-ecdsa
from ecdsa.util import sigencode_strings_canonize

# secp256k1
P = 2**256 - 2**32 - 977
N = SECP256k1.order
G = (SECP256k1.generator.x(), SECP256k1.generator.y())

# PROTOCOL.md §2, exactly as hashed
DISPATCH_ORDER = [
    ("orderId", "bytes32"), ("aggregator", "address"), ("gateway", "address"), ("auctionId", "bytes32"),
    ("sequence", "uint64"), ("issuedAt", "uint64"), ("validUntil", "uint64"), ("start", "uint64"),
    ("durationMs", "uint64"), ("randomizeMs", "uint64"), ("rampMs", "uint64"), ("signal", "uint8"),
    ("valueW", "int64"), ("priceMicros", "uint64"), ("modification", "uint32"),
]
ORDER_STATUS = [
    ("orderId", "bytes32"), ("gateway", "address"), ("modification", "uint32"), ("status", "uint16"),
    ("reason", "uint16"), ("at", "uint64"), ("deliveredWh", "int64"),
]
STATUS_NAMES = {1: "RECEIVED", 2: "STARTED", 3: "COMPLETED", 6: "CANCELLED", 7: "SUPERSEDED", 10: "ABORTED",
                252: "NOT_APPLICABLE", 253: "INVALID", 254: "EXPIRED"}
REASON_NAMES = {1: "MALFORMED", 2: "BAD_SIGNATURE", 3: "UNTRUSTED_AGGREGATOR", 4: "WRONG_GATEWAY", 5: "EXPIRED",
                6: "REPLAY", 7: "CLOCK_SKEW", 8: "UNSUPPORTED_SIGNAL", 9: "OUT_OF_RANGE", 10: "UNKNOWN_ORDER",
                11: "DEVICE_FAULT", 12: "SAFETY_LIMIT"}
MAX_SAFE = 2**53 - 1


def k256(data):
    return keccak.new(digest_bits=256, data=data).digest()


def type_string(name, fields):
    return "%s(%s)" % (name, ",".join("%s %s" % (t, f) for f, t in fields))


def word(t, v):
    """One field as its 32-byte EIP-712 word."""
    if t == "address":
        return bytes(12) + bytes.fromhex(v[2:])
    if t == "bytes32":
        return bytes.fromhex(v[2:])
    return (v % 2**256).to_bytes(32, "big")  # int64: two's complement


def digest(name, fields, message, chain_id):
    domain = k256(k256(b"EIP712Domain(string name,string version,uint256 chainId)") + k256(b"flexgate") + k256(b"1")
                  + chain_id.to_bytes(32, "big"))
    struct = k256(k256(type_string(name, fields).encode()) + b"".join(word(t, message[f]) for f, t in fields))
    return k256(b"\x19\x01" + domain + struct)


# ---- secp256k1 public key recovery (affine arithmetic, enough for one signature) ----
def _add(a, b):
    if a is None:
        return b
    if b is None:
        return a
    if a[0] == b[0] and (a[1] + b[1]) % P == 0:
        return None
    if a == b:
        lam = 3 * a[0] * a[0] * pow(2 * a[1], -1, P)
    else:
        lam = (b[1] - a[1]) * pow(b[0] - a[0], -1, P)
    x = (lam * lam - a[0] - b[0]) % P
    return (x, (lam * (a[0] - x) - a[1]) % P)


def _mul(pt, n):
    out = None
    while n:
        if n & 1:
            out = _add(out, pt)
        pt, n = _add(pt, pt), n >> 1
    return out


def address_of_point(q):
    return "0x" + k256(q[0].to_bytes(32, "big") + q[1].to_bytes(32, "big"))[-20:].hex()


def recover(digest_bytes, r, s, v):
    """The address that signed `digest_bytes` with (r, s, v), or None."""
    y2 = (pow(r, 3, P) + 7) % P
    y = pow(y2, (P + 1) // 4, P)
    if y * y % P != y2:
        return None  # r is no point's x coordinate
    big_r = (r, y if y % 2 == v - 27 else P - y)
    z = int.from_bytes(digest_bytes, "big")
    q = _mul(_add(_mul(big_r, s), _mul(G, (-z) % N)), pow(r, -1, N))  # Q = r^-1 (s R - z G)
    return None if q is None else address_of_point(q)


def sign_digest(private_key_hex, digest_bytes):
    """65 bytes r ‖ s ‖ v: RFC 6979 (HMAC-SHA256) deterministic, low s, v in {27, 28}."""
    sk = SigningKey.from_string(bytes.fromhex(private_key_hex[2:]), curve=SECP256k1)
    r_bytes, s_bytes = sk.sign_digest_deterministic(digest_bytes, hashfunc=hashlib.sha256, sigencode=sigencode_strings_canonize)
    r, s = int.from_bytes(r_bytes, "big"), int.from_bytes(s_bytes, "big")
    me = address_of_point((sk.get_verifying_key().pubkey.point.x(), sk.get_verifying_key().pubkey.point.y()))
    for v in (27, 28):
        if recover(digest_bytes, r, s, v) == me:
            return r_bytes + s_bytes + bytes([v]), me
    raise RuntimeError("no recovery id reproduces the key")


# ---- commands ----
def hex_arg(length):
    def check(text):
        if not re.fullmatch(r"0x[0-9a-fA-F]{%d}" % (2 * length), text):
            raise argparse.ArgumentTypeError("expected 0x and %d hex digits" % (2 * length))
        return text.lower()
    return check


def cmd_sign(a):
    now = int(time.time() * 1000)
    issued_at = a.issued_at if a.issued_at is not None else now
    sk = SigningKey.from_string(bytes.fromhex(a.key[2:]), curve=SECP256k1)
    point = sk.get_verifying_key().pubkey.point
    message = {
        "orderId": a.order_id or "0x" + os.urandom(32).hex(),
        "aggregator": address_of_point((point.x(), point.y())),
        "gateway": a.gateway,
        "auctionId": a.auction_id,
        "sequence": a.sequence if a.sequence is not None else issued_at,
        "issuedAt": issued_at,
        "validUntil": a.valid_until if a.valid_until is not None else issued_at + a.valid_for_ms,
        "start": a.start,
        "durationMs": a.duration_ms,
        "randomizeMs": a.randomize_ms,
        "rampMs": a.ramp_ms,
        "signal": a.signal,
        "valueW": a.value,
        "priceMicros": a.price_micros,
        "modification": a.modification,
    }
    for field, t in DISPATCH_ORDER:
        v = message[field]
        if t.startswith("uint") and not 0 <= v <= min(2**int(t[4:]) - 1, MAX_SAFE):
            sys.exit("aggregator.py: --%s: %d is out of range for %s" % (field, v, t))
        if t == "int64" and not -MAX_SAFE <= v <= MAX_SAFE:
            sys.exit("aggregator.py: --value: out of range")
    signature, _ = sign_digest(a.key, digest("DispatchOrder", DISPATCH_ORDER, message, a.chain_id))
    envelope = {"type": "DispatchOrder", "message": message, "signature": "0x" + signature.hex()}
    print(json.dumps(envelope, separators=(",", ":")))
    return 0


def status_problem(envelope, gateway, chain_id):
    """What is wrong with an OrderStatus envelope (None when the gateway signed it)."""
    if not isinstance(envelope, dict) or sorted(envelope) != ["message", "signature", "type"]:
        return "MALFORMED: the envelope must have exactly the keys type, message, signature"
    if envelope["type"] != "OrderStatus":
        return "MALFORMED: type is %r, expected OrderStatus" % (envelope["type"],)
    m = envelope["message"]
    if not isinstance(m, dict) or sorted(m) != sorted(f for f, _ in ORDER_STATUS):
        return "MALFORMED: message must have exactly the fields of OrderStatus"
    values = {}
    for field, t in ORDER_STATUS:
        v = m[field]
        if t == "address" or t == "bytes32":
            if not isinstance(v, str) or not re.fullmatch(r"0x[0-9a-fA-F]{%d}" % (40 if t == "address" else 64), v):
                return "MALFORMED: message.%s is not %s hex" % (field, t)
            values[field] = v.lower()
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v != int(v):
            return "MALFORMED: message.%s is not a JSON integer" % field
        v = int(v)
        lo, hi = (-MAX_SAFE, MAX_SAFE) if t == "int64" else (0, min(2**int(t[4:]) - 1, MAX_SAFE))
        if not lo <= v <= hi:
            return "MALFORMED: message.%s = %d is out of range for %s" % (field, v, t)
        values[field] = v
    sig = envelope["signature"]
    if not isinstance(sig, str) or not re.fullmatch(r"0x[0-9a-fA-F]{130}", sig):
        return "MALFORMED: signature is not 0x + 130 hex"
    raw = bytes.fromhex(sig[2:])
    r, s, v = int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:64], "big"), raw[64]
    if v not in (27, 28):
        return "BAD_SIGNATURE: v = %d" % v
    if not (1 <= r < N and 1 <= s < N):
        return "BAD_SIGNATURE: r or s out of range"
    if s > N // 2:
        return "BAD_SIGNATURE: high s"
    signer = recover(digest("OrderStatus", ORDER_STATUS, values, chain_id), r, s, v)
    if signer is None:
        return "BAD_SIGNATURE: no key recovers from it"
    if signer != values["gateway"]:
        return "BAD_SIGNATURE: signed by %s, not by message.gateway %s" % (signer, values["gateway"])
    if signer != gateway:
        return "WRONG_GATEWAY: signed by gateway %s, expected %s" % (signer, gateway)
    return None


def cmd_verify_status(a):
    text = sys.stdin.read()
    try:
        envelope = json.loads(text)
    except ValueError as e:
        print("INVALID: MALFORMED: not JSON (%s)" % e)
        return 1
    problem = status_problem(envelope, a.gateway, a.chain_id)
    if problem:
        print("INVALID: " + problem)
        return 1
    m = envelope["message"]
    reason = " (%s)" % REASON_NAMES.get(m["reason"], m["reason"]) if m["reason"] else ""
    print("valid: %s%s order %s mod %d at %d deliveredWh %d, signed by %s" % (
        STATUS_NAMES.get(m["status"], m["status"]), reason, m["orderId"].lower(), m["modification"], m["at"], m["deliveredWh"], a.gateway))
    return 0


def main(argv):
    parser = argparse.ArgumentParser(description="flexgate aggregator example: sign DispatchOrders, verify OrderStatus messages")
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("sign", help="sign a DispatchOrder; prints the envelope JSON")
    s.add_argument("--key", required=True, type=hex_arg(32), help="the aggregator's private key")
    s.add_argument("--chain-id", required=True, type=int)
    s.add_argument("--gateway", required=True, type=hex_arg(20))
    s.add_argument("--signal", required=True, type=int, help="0 CANCEL, 1 SITE_IMPORT_LIMIT, 2 SITE_EXPORT_LIMIT, 3 SITE_SETPOINT, 4 SITE_DELTA")
    s.add_argument("--value", required=True, type=int, help="valueW")
    s.add_argument("--duration-ms", required=True, type=int)
    s.add_argument("--start", type=int, default=0, help="window start, unix ms (0 = at receipt)")
    s.add_argument("--randomize-ms", type=int, default=0)
    s.add_argument("--ramp-ms", type=int, default=0)
    s.add_argument("--price-micros", type=int, default=0)
    s.add_argument("--order-id", type=hex_arg(32), help="default: 32 random bytes")
    s.add_argument("--auction-id", type=hex_arg(32), default="0x" + "00" * 32)
    s.add_argument("--modification", type=int, default=0)
    s.add_argument("--sequence", type=int, help="default: issuedAt (must rise with every order to this gateway)")
    s.add_argument("--issued-at", type=int, help="unix ms; default now")
    s.add_argument("--valid-until", type=int, help="unix ms; default issuedAt + --valid-for-ms")
    s.add_argument("--valid-for-ms", type=int, default=30000)
    v = sub.add_parser("verify-status", help="verify an OrderStatus envelope read from stdin")
    v.add_argument("--gateway", required=True, type=hex_arg(20))
    v.add_argument("--chain-id", required=True, type=int)
    a = parser.parse_args(argv)
    return cmd_sign(a) if a.command == "sign" else cmd_verify_status(a)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
