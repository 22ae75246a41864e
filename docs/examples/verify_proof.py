#!/usr/bin/env python3
# Recompute leaf, root and signer of a `flexgate proof export` file with no flexgate code.
# Needs: python3 and keccak256 (Debian: python3-pycryptodome). Optional 2nd arg: an RPC URL and the registry.
import json, sys, urllib.request
from Cryptodome.Hash import keccak   # Debian python3-pycryptodome (pip: pycryptodomex)

def k(b): return keccak.new(digest_bits=256, data=b).digest()
def word(x): return (x % 2**256).to_bytes(32, 'big')          # ABI word, two's complement for int64
def addr(a): return bytes(12) + bytes.fromhex(a[2:])
def b32(h): return bytes.fromhex(h[2:])

e = json.load(open(sys.argv[1])); r, m = e['reading'], e['proof']['message']

# 1. leaf = keccak256(0x00 ‖ abi.encode(address, uint64 ts, int64 powerW, uint64 importWh, uint64 exportWh, bytes32 salt))
leaf = k(b'\x00' + addr(r['gateway']) + word(r['ts']) + word(r['powerW']) + word(r['importWh']) + word(r['exportWh']) + b32(r['salt']))

# 2. root from (index, size, path), RFC 9162 §2.1.3.2; node = keccak256(0x01 ‖ left ‖ right)
fn, sn, h = e['index'], e['size'] - 1, leaf
for p in map(b32, e['path']):
    if fn & 1 or fn == sn:
        h = k(b'\x01' + p + h)
        while fn and not fn & 1: fn >>= 1; sn >>= 1
    else:
        h = k(b'\x01' + h + p)
    fn >>= 1; sn >>= 1
print('leaf hash     ', '0x' + leaf.hex())
print('root from path', '0x' + h.hex(), 'OK' if sn == 0 and '0x' + h.hex() == m['root'] and e['size'] == m['count'] else 'MISMATCH')

# 3. EIP-712 digest of the MeterProof, then the signer (secp256k1 public key recovery)
CHAIN_ID = int(sys.argv[2]) if len(sys.argv) > 2 else 31337
dom = k(k(b'EIP712Domain(string name,string version,uint256 chainId)') + k(b'flexgate') + k(b'1') + word(CHAIN_ID))
th = k(b'MeterProof(address gateway,uint64 intervalStart,uint64 intervalEnd,uint32 count,bytes32 root,uint64 importWh,uint64 exportWh)')
struct = k(th + addr(m['gateway']) + word(m['intervalStart']) + word(m['intervalEnd']) + word(m['count']) + b32(m['root']) + word(m['importWh']) + word(m['exportWh']))
digest = int.from_bytes(k(b'\x19\x01' + dom + struct), 'big')

P = 2**256 - 2**32 - 977; N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
G = (0x79BE667EF9DCBBAC55A06295CE870B07029BFCDB2DCE28D959F2815B16F81798, 0x483ADA7726A3C4655DA4FBFC0E1108A8FD17B448A68554199C47D08FFB10D4B8)
def add(a, b):
    if a is None: return b
    if b is None: return a
    if a[0] == b[0] and (a[1] + b[1]) % P == 0: return None
    l = (3 * a[0] * a[0] * pow(2 * a[1], -1, P)) if a == b else ((b[1] - a[1]) * pow(b[0] - a[0], -1, P))
    x = (l * l - a[0] - b[0]) % P
    return (x, (l * (a[0] - x) - a[1]) % P)
def mul(pt, n):
    out = None
    while n:
        if n & 1: out = add(out, pt)
        pt, n = add(pt, pt), n >> 1
    return out
sig = b32(e['proof']['signature']); rr, ss, v = int.from_bytes(sig[:32], 'big'), int.from_bytes(sig[32:64], 'big'), sig[64]
y = pow((rr ** 3 + 7) % P, (P + 1) // 4, P)
R = (rr, y if y % 2 == v - 27 else P - y)
Q = mul(add(mul(R, ss), mul(G, (-digest) % N)), pow(rr, -1, N))     # Q = r⁻¹ (s·R − z·G)
signer = '0x' + k(Q[0].to_bytes(32, 'big') + Q[1].to_bytes(32, 'big'))[-20:].hex()
print('signer        ', signer, 'OK' if signer == m['gateway'].lower() and ss <= N // 2 else 'NOT THE GATEWAY')

# 4. (optional) the root on chain: eth_call rootOf(gateway, intervalStart) on the registry
if len(sys.argv) > 4:
    url, registry = sys.argv[3], sys.argv[4]
    data = '0x' + k(b'rootOf(address,uint64)')[:4].hex() + addr(m['gateway']).hex() + word(m['intervalStart']).hex()
    req = {'jsonrpc': '2.0', 'id': 1, 'method': 'eth_call', 'params': [{'to': registry, 'data': data}, 'latest']}
    res = json.load(urllib.request.urlopen(urllib.request.Request(url, json.dumps(req).encode(), {'content-type': 'application/json'})))['result']
    root, count, anchored = '0x' + res[2:66], int(res[66:130], 16), int(res[130:194], 16)
    print('rootOf        ', root, count, bool(anchored), 'OK' if anchored and root == m['root'] and count == m['count'] else 'NOT ANCHORED AS SIGNED')
