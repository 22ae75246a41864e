import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BaseError,
  ContractFunctionRevertedError,
  concat,
  createPublicClient,
  createWalletClient,
  encodeAbiParameters,
  encodeFunctionData,
  http,
  keccak256,
  numberToHex,
  hexToBigInt,
  type Address,
  type Hex,
  type PublicClient,
  type WalletClient,
  type Account,
  type Chain,
  type Transport,
} from 'viem';
import { generatePrivateKey, privateKeyToAccount, signTypedData } from 'viem/accounts';
import { startAnvil, type Anvil } from '../anvil.js';
import { abi, bytecode } from './generated/ProofRegistry.js';

// PROTOCOL.md §2: domain without verifyingContract, the MeterProof type exactly as hashed.
const types = {
  MeterProof: [
    { name: 'gateway', type: 'address' },
    { name: 'intervalStart', type: 'uint64' },
    { name: 'intervalEnd', type: 'uint64' },
    { name: 'count', type: 'uint32' },
    { name: 'root', type: 'bytes32' },
    { name: 'importWh', type: 'uint64' },
    { name: 'exportWh', type: 'uint64' },
  ],
} as const;

interface MeterProof {
  gateway: Address;
  intervalStart: bigint;
  intervalEnd: bigint;
  count: number;
  root: Hex;
  importWh: bigint;
  exportWh: bigint;
}

const NULL_ROOT: Hex = `0x${'00'.repeat(32)}`;
const INTERVAL_MS = 900_000n;
const T0 = 1_764_000_000_000n;
const SECP256K1_N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;

// --- RFC 6962 tree with keccak256 (PROTOCOL.md §5), written here apart from ledger-client ---
const leafHash = (data: Hex): Hex => keccak256(concat(['0x00', data]));
const nodeHash = (l: Hex, r: Hex): Hex => keccak256(concat(['0x01', l, r]));
const split = (n: number): number => {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
};
function mth(leaves: readonly Hex[]): Hex {
  if (leaves.length === 0) return NULL_ROOT;
  if (leaves.length === 1) return leaves[0] as Hex;
  const k = split(leaves.length);
  return nodeHash(mth(leaves.slice(0, k)), mth(leaves.slice(k)));
}
function auditPath(m: number, leaves: readonly Hex[]): Hex[] {
  if (leaves.length <= 1) return [];
  const k = split(leaves.length);
  return m < k
    ? [...auditPath(m, leaves.slice(0, k)), mth(leaves.slice(k))]
    : [...auditPath(m - k, leaves.slice(k)), mth(leaves.slice(0, k))];
}
function readings(gateway: Address, n: number): Hex[] {
  return Array.from({ length: n }, (_, i) =>
    leafHash(
      encodeAbiParameters(
        [{ type: 'address' }, { type: 'uint64' }, { type: 'int64' }, { type: 'uint64' }, { type: 'uint64' }, { type: 'bytes32' }],
        [gateway, T0 + BigInt(i) * 10_000n, BigInt(1500 - i), 100_000n + BigInt(i), 2_000n, keccak256(numberToHex(i, { size: 32 }))],
      ),
    ),
  );
}

describe('ProofRegistry on anvil', () => {
  let anvil: Anvil;
  let publicClient: PublicClient;
  let relayer: WalletClient<Transport, Chain, Account>;
  let registry: Address;
  const gas: Record<string, bigint> = {};

  beforeAll(async () => {
    anvil = await startAnvil();
    publicClient = createPublicClient({ chain: anvil.chain, transport: http(anvil.rpcUrl) });
    relayer = createWalletClient({ account: privateKeyToAccount(anvil.privateKeys[0] as Hex), chain: anvil.chain, transport: http(anvil.rpcUrl) });
    const hash = await relayer.deployContract({ abi, bytecode });
    const receipt = await publicClient.waitForTransactionReceipt({ hash });
    registry = receipt.contractAddress as Address;
    gas.deploy = receipt.gasUsed;
  });

  afterAll(async () => {
    if (Object.keys(gas).length > 0) {
      console.log(`ProofRegistry gas:\n${Object.entries(gas).map(([k, v]) => `  ${k}: ${v}`).join('\n')}`);
    }
    await anvil?.stop();
  });

  const newGateway = (): { key: Hex; address: Address } => {
    const key = generatePrivateKey();
    return { key, address: privateKeyToAccount(key).address };
  };
  const proofFor = (gateway: Address, i: bigint, count = 3, root: Hex = keccak256(numberToHex(i + 1n, { size: 32 }))): MeterProof => ({
    gateway,
    intervalStart: T0 + i * INTERVAL_MS,
    intervalEnd: T0 + (i + 1n) * INTERVAL_MS,
    count,
    root: count === 0 ? NULL_ROOT : root,
    importWh: 412n + i,
    exportWh: 37n,
  });
  const sign = (key: Hex, proof: MeterProof): Promise<Hex> =>
    signTypedData({ privateKey: key, domain: { name: 'flexgate', version: '1', chainId: anvil.chainId }, types, primaryType: 'MeterProof', message: proof });

  async function anchor(proof: MeterProof, sig: Hex, sender = relayer) {
    const hash = await sender.writeContract({ address: registry, abi, functionName: 'anchor', args: [proof, sig] });
    const receipt = await publicClient.waitForTransactionReceipt({ hash });
    expect(receipt.status).toBe('success');
    return receipt;
  }
  /** The custom error an anchor call reverts with (simulated against the latest block). */
  async function anchorError(proof: MeterProof, sig: Hex): Promise<{ name: string; args: readonly unknown[] }> {
    return revertOf(publicClient.simulateContract({ account: relayer.account, address: registry, abi, functionName: 'anchor', args: [proof, sig] }));
  }
  async function revertOf(call: Promise<unknown>): Promise<{ name: string; args: readonly unknown[] }> {
    try {
      await call;
    } catch (err) {
      const reverted = err instanceof BaseError ? err.walk((e) => e instanceof ContractFunctionRevertedError) : undefined;
      if (reverted instanceof ContractFunctionRevertedError && reverted.data) {
        return { name: reverted.data.errorName, args: reverted.data.args ?? [] };
      }
      throw err;
    }
    throw new Error('the call did not revert');
  }
  const rootOf = (gateway: Address, intervalStart: bigint) =>
    publicClient.readContract({ address: registry, abi, functionName: 'rootOf', args: [gateway, intervalStart] });
  const lastAnchored = (gateway: Address) => publicClient.readContract({ address: registry, abi, functionName: 'lastAnchored', args: [gateway] });

  it('anchors a signed proof: rootOf, lastAnchored and the ProofAnchored event carry its fields', async () => {
    const gw = newGateway();
    const proof = proofFor(gw.address, 0n, 13);
    const receipt = await anchor(proof, await sign(gw.key, proof));
    gas['anchor (first interval of a gateway)'] = receipt.gasUsed;

    expect(await rootOf(gw.address, proof.intervalStart)).toEqual([proof.root, 13, true]);
    expect(await rootOf(gw.address, proof.intervalEnd)).toEqual([NULL_ROOT, 0, false]);
    expect(await lastAnchored(gw.address)).toBe(proof.intervalStart);

    const events = await publicClient.getContractEvents({
      address: registry,
      abi,
      eventName: 'ProofAnchored',
      args: { gateway: gw.address },
      fromBlock: receipt.blockNumber,
      toBlock: receipt.blockNumber,
    });
    expect(events).toHaveLength(1);
    expect(events[0]?.args).toEqual(proof);
    expect(events[0]?.transactionHash).toBe(receipt.transactionHash);

    const next = proofFor(gw.address, 1n, 13);
    gas['anchor (next interval)'] = (await anchor(next, await sign(gw.key, next))).gasUsed;
  });

  it('computes the digest and domain of PROTOCOL.md and accepts the reference MeterProof vector', async () => {
    // /work/shared/vectors/eip712.json (MeterProof, chainId 31337) and merkle.json (13 leaves).
    const vector = {
      proof: {
        gateway: '0x1563915e194d8cfba1943570603f7606a3115508',
        intervalStart: 1764000000000n,
        intervalEnd: 1764000900000n,
        count: 13,
        root: '0x2a419a5cbd085f33fad5dc61aa6bff4b5aebbd7bb53f00ec3b03de12fbe71be3',
        importWh: 412n,
        exportWh: 37n,
      } satisfies MeterProof,
      signature:
        '0xeb451710c1c618e3e0fc5b3d69daae20776ac36a2c3abe0888ccf9cb378e572c5f48eacbb2ad86c032319597ae2754e4cb6a7510e05871e5c187ebc43257614b1b',
      domainSeparator: '0x33786ff1541d0d1ac0d9a411c6cf16a3a1a4f620bcc235ab7ad4f510b4df9bad',
      typeHash: '0x367ccda5d1034432ad42db7dd7f7fd235fabd6e9f397d00263f6245656a4d551',
      digest: '0x9969d0838af2b4168138a05b303d1362fdcc26c5b9b1fd364893a268f671128d',
      leaf12: '0x83005592b876fc078370b81812816527361d1dd012b782f3f17ad79d443ee709',
      path12: [
        '0xbd0fdbc1e70a30512a6ce2e817bd5d50afbe8d1f055ab641bb02c33f0bfeb6e5',
        '0x77ffc562d4303bbd7845bac985e38c42a8fe57082985eaa25463755a75329ea0',
      ],
      leaf5: '0x0e61c53578fce2df152f4ccd3faaee7f5723380e09d956154577eead11f9803a',
      path5: [
        '0x9d3b0d3c55a27cd6f43c254e01d66c3a3126591d660bd97d1bd4ca7e5307982a',
        '0x8e54806b56a8bf015dea8b71ef9936b3bba2ae1f08f73f7d1a26570d61e8d5e0',
        '0x40bdd037b3c986660515ec0d305d11b32fb4f4803b49ac8b9c3116f210906536',
        '0xb67120f9be18227467a9f022c1b145667478ead0085d5f0a3365685a3cdff60f',
      ],
    } as const;
    expect(anvil.chainId).toBe(31337);
    const read = <F extends 'domainSeparator' | 'METER_PROOF_TYPEHASH'>(functionName: F) =>
      publicClient.readContract({ address: registry, abi, functionName });
    expect(await read('domainSeparator')).toBe(vector.domainSeparator);
    expect(await read('METER_PROOF_TYPEHASH')).toBe(vector.typeHash);
    expect(await publicClient.readContract({ address: registry, abi, functionName: 'digestOf', args: [vector.proof] })).toBe(vector.digest);

    await anchor(vector.proof, vector.signature);
    expect(await rootOf(vector.proof.gateway, vector.proof.intervalStart)).toEqual([vector.proof.root, 13, true]);
    const verify = (leaf: Hex, index: bigint, path: readonly Hex[]) =>
      publicClient.readContract({
        address: registry,
        abi,
        functionName: 'verifyInclusion',
        args: [vector.proof.gateway, vector.proof.intervalStart, leaf, index, 13n, path],
      });
    expect(await verify(vector.leaf12, 12n, vector.path12)).toBe(true);
    expect(await verify(vector.leaf5, 5n, vector.path5)).toBe(true);
    expect(await verify(vector.leaf5, 12n, vector.path12)).toBe(false);
  });

  it('rejects a forged signature, a tampered field, high s and a wrong v', async () => {
    const gw = newGateway();
    const other = newGateway();
    const proof = proofFor(gw.address, 0n);
    const sig = await sign(gw.key, proof);

    const forged = await anchorError(proof, await sign(other.key, proof));
    expect(forged).toEqual({ name: 'WrongSigner', args: [other.address, gw.address] });

    const tampered = await anchorError({ ...proof, importWh: proof.importWh + 1n }, sig);
    expect(tampered.name).toBe('WrongSigner');
    expect(tampered.args[1]).toBe(gw.address);

    // The malleable twin (n - s, flipped v) recovers the same key, and must still be refused.
    const r = sig.slice(0, 66) as Hex;
    const s = hexToBigInt(`0x${sig.slice(66, 130)}`);
    const v = Number.parseInt(sig.slice(130), 16);
    expect([27, 28]).toContain(v);
    const highS = concat([r, numberToHex(SECP256K1_N - s, { size: 32 }), numberToHex(v === 27 ? 28 : 27, { size: 1 })]);
    expect((await anchorError(proof, highS)).name).toBe('BadSignatureHighS');

    for (const badV of [0, 1, 29]) {
      const wrongV = concat([sig.slice(0, 130) as Hex, numberToHex(badV, { size: 1 })]);
      expect(await anchorError(proof, wrongV)).toEqual({ name: 'BadSignatureV', args: [badV] });
    }
    expect(await anchorError(proof, sig.slice(0, 128) as Hex)).toEqual({ name: 'BadSignatureLength', args: [63n] });
    // A signature that recovers nobody (r = 0).
    expect((await anchorError(proof, concat([NULL_ROOT, `0x${sig.slice(66)}`]))).name).toBe('WrongSigner');

    expect(await lastAnchored(gw.address)).toBe(0n);
    await anchor(proof, sig); // the genuine one still goes through
  });

  it('is append-only per gateway: a replayed or an earlier interval reverts', async () => {
    const gw = newGateway();
    const p1 = proofFor(gw.address, 1n);
    const p2 = proofFor(gw.address, 2n);
    const p3 = proofFor(gw.address, 3n);
    const [s1, s2, s3] = await Promise.all([sign(gw.key, p1), sign(gw.key, p2), sign(gw.key, p3)]);
    await anchor(p1, s1);
    await anchor(p3, s3);
    expect(await anchorError(p3, s3)).toEqual({ name: 'AlreadyAnchored', args: [gw.address, p3.intervalStart] });
    expect(await anchorError(p1, s1)).toEqual({ name: 'AlreadyAnchored', args: [gw.address, p1.intervalStart] });
    expect(await anchorError(p2, s2)).toEqual({ name: 'OutOfOrder', args: [gw.address, p2.intervalStart, p3.intervalStart] });
    expect(await lastAnchored(gw.address)).toBe(p3.intervalStart);
    expect((await rootOf(gw.address, p2.intervalStart))[2]).toBe(false);

    // Another gateway's intervals are independent.
    const gw2 = newGateway();
    const q1 = proofFor(gw2.address, 1n);
    await anchor(q1, await sign(gw2.key, q1));
  });

  it('requires intervalEnd > intervalStart and count 0 exactly when the root is null', async () => {
    const gw = newGateway();
    const cases: Array<[MeterProof, string]> = [
      [{ ...proofFor(gw.address, 0n, 0), root: keccak256('0x01') }, 'CountRootMismatch'],
      [{ ...proofFor(gw.address, 0n, 5), root: NULL_ROOT }, 'CountRootMismatch'],
      [{ ...proofFor(gw.address, 0n), intervalEnd: T0 }, 'EmptyInterval'],
      [{ ...proofFor(gw.address, 0n), intervalEnd: T0 - 1n }, 'EmptyInterval'],
    ];
    for (const [proof, name] of cases) {
      expect((await anchorError(proof, await sign(gw.key, proof))).name).toBe(name);
    }
    // An interval with no readings (an outage) is anchored as count 0 with the null root.
    const empty = proofFor(gw.address, 0n, 0);
    await anchor(empty, await sign(gw.key, empty));
    expect(await rootOf(gw.address, empty.intervalStart)).toEqual([NULL_ROOT, 0, true]);
  });

  it('anchors a batch in order in one transaction, and a batch with one interval out of order not at all', async () => {
    const gw = newGateway();
    const batches = [
      { n: 4, count: 90, label: 'anchorBatch of 4, per interval' },
      { n: 16, count: 90, label: 'anchorBatch of 16, per interval' },
      { n: 16, count: 0, label: 'anchorBatch of 16 empty intervals (outage), per interval' },
    ];
    const first = proofFor(gw.address, 0n, 90); // so no batch pays for the gateway's first anchor
    await anchor(first, await sign(gw.key, first));
    let next = 1n;
    for (const { n, count, label } of batches) {
      const proofs = Array.from({ length: n }, (_, i) => proofFor(gw.address, next + BigInt(i), count));
      next += BigInt(n);
      const sigs = await Promise.all(proofs.map((p) => sign(gw.key, p)));
      const hash = await relayer.writeContract({ address: registry, abi, functionName: 'anchorBatch', args: [proofs, sigs] });
      const receipt = await publicClient.waitForTransactionReceipt({ hash });
      expect(receipt.status).toBe('success');
      gas[label] = receipt.gasUsed / BigInt(n);
      const events = await publicClient.getContractEvents({ address: registry, abi, eventName: 'ProofAnchored', args: { gateway: gw.address }, blockHash: receipt.blockHash });
      expect(events.map((e) => e.args)).toEqual(proofs);
      for (const p of proofs) expect(await rootOf(gw.address, p.intervalStart)).toEqual([p.root, p.count, true]);
    }
    expect(await lastAnchored(gw.address)).toBe(proofFor(gw.address, next - 1n).intervalStart);

    // One out of order in the batch: sent with a fixed gas limit so it is mined, and reverts whole.
    const gw2 = newGateway();
    const proofs = [0n, 1n, 3n, 2n, 4n].map((i) => proofFor(gw2.address, i));
    const sigs = await Promise.all(proofs.map((p) => sign(gw2.key, p)));
    expect((await revertOf(publicClient.simulateContract({ account: relayer.account, address: registry, abi, functionName: 'anchorBatch', args: [proofs, sigs] }))).name).toBe('OutOfOrder');
    const hash = await relayer.writeContract({ address: registry, abi, functionName: 'anchorBatch', args: [proofs, sigs], gas: 2_000_000n });
    expect((await publicClient.waitForTransactionReceipt({ hash })).status).toBe('reverted');
    expect(await lastAnchored(gw2.address)).toBe(0n);
    for (const p of proofs) expect((await rootOf(gw2.address, p.intervalStart))[2]).toBe(false);

    const mismatch = await revertOf(
      publicClient.simulateContract({ account: relayer.account, address: registry, abi, functionName: 'anchorBatch', args: [proofs, sigs.slice(1)] }),
    );
    expect(mismatch).toEqual({ name: 'BatchLength', args: [5n, 4n] });
    expect((await revertOf(publicClient.simulateContract({ account: relayer.account, address: registry, abi, functionName: 'anchorBatch', args: [[], []] }))).name).toBe('BatchLength');
  });

  it('lets anyone relay a gateway-signed proof', async () => {
    const gw = newGateway();
    const proof = proofFor(gw.address, 0n);
    const other = createWalletClient({ account: privateKeyToAccount(anvil.privateKeys[3] as Hex), chain: anvil.chain, transport: http(anvil.rpcUrl) });
    const receipt = await anchor(proof, await sign(gw.key, proof), other);
    expect(receipt.from).toBe(other.account.address.toLowerCase());
    expect(await rootOf(gw.address, proof.intervalStart)).toEqual([proof.root, proof.count, true]);
  });

  it('verifies RFC 6962 inclusion against the anchored root, and refuses wrong proofs', async () => {
    const gw = newGateway();
    const trees = [1, 2, 3, 5, 7, 90, 900].map((n) => ({ n, leaves: readings(gw.address, n) }));
    for (const [i, t] of trees.entries()) {
      const proof = proofFor(gw.address, BigInt(i), t.n, mth(t.leaves));
      await anchor(proof, await sign(gw.key, proof));
    }
    const verifyArgs = (i: number, leaf: Hex, index: number, size: number, path: readonly Hex[]) =>
      [gw.address, proofFor(gw.address, BigInt(i)).intervalStart, leaf, BigInt(index), BigInt(size), path] as const;
    const verify = (...a: Parameters<typeof verifyArgs>) =>
      publicClient.readContract({ address: registry, abi, functionName: 'verifyInclusion', args: verifyArgs(...a) });

    for (const [i, { n, leaves }] of trees.entries()) {
      const indices = n <= 7 ? leaves.map((_, m) => m) : [0, 1, n >> 1, n - 2, n - 1];
      for (const m of indices) {
        const path = auditPath(m, leaves);
        expect(await verify(i, leaves[m] as Hex, m, n, path), `n=${n} m=${m}`).toBe(true);
      }
    }
    // Wrong leaf, wrong index, wrong size, short/long/altered path, unanchored interval.
    const [i, { n, leaves }] = [5, trees[5] as { n: number; leaves: Hex[] }];
    const path = auditPath(17, leaves);
    expect(await verify(i, leaves[18] as Hex, 17, n, path)).toBe(false);
    expect(await verify(i, leaves[17] as Hex, 18, n, path)).toBe(false);
    expect(await verify(i, leaves[17] as Hex, 17, n - 1, path)).toBe(false);
    expect(await verify(i, leaves[17] as Hex, 17, n, path.slice(0, -1))).toBe(false);
    expect(await verify(i, leaves[17] as Hex, 17, n, [...path, NULL_ROOT])).toBe(false);
    expect(await verify(i, leaves[17] as Hex, 17, n, [keccak256('0x'), ...path.slice(1)])).toBe(false);
    expect(await verify(i, leaves[17] as Hex, n, n, path)).toBe(false);
    expect(await verify(20, leaves[17] as Hex, 17, n, path)).toBe(false);

    for (const [i, { n, leaves }] of trees.entries()) {
      if (n !== 90 && n !== 900) continue;
      const m = 1; // a leaf of the full-depth left subtree: ⌈log2 n⌉ hashes, the longest path
      gas[`verifyInclusion n=${n} (estimateGas, ${auditPath(m, leaves).length} hashes)`] = await publicClient.estimateGas({
        to: registry,
        data: encodeFunctionData({ abi, functionName: 'verifyInclusion', args: verifyArgs(i, leaves[m] as Hex, m, n, auditPath(m, leaves)) }),
      });
    }
  });
});
