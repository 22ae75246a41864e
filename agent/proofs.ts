/**
 * The auditor's tools (PROTOCOL.md §5): `flexgate proof export --at TIME` prints one reading with
 * its salt, its inclusion proof, the signed MeterProof of its interval and where that was anchored;
 * `flexgate proof verify FILE` checks such an export against the chain and says plainly what holds
 * and what does not. verify uses no state of the gateway: only the file and the chain.
 */
import type BetterSqlite3 from 'better-sqlite3';
import { createPublicClient, http, parseEventLogs, type Hex as ViemHex } from 'viem';
import { verifyEnvelope, type Hex, type MeterProof } from '../ledger-client/eip712.js';
import { abi as proofRegistryAbi } from '../ledger-client/contracts/generated/ProofRegistry.js';
import { readingLeafHash, treeOfReadings, verifyInclusion, type MeterReading } from '../ledger-client/merkle.js';

export interface Anchor {
  txHash: Hex;
  blockNumber: number;
}

export interface ProofExport {
  reading: MeterReading;
  index: number;
  size: number;
  path: Hex[];
  proof: { type: 'MeterProof'; message: MeterProof; signature: Hex };
  anchor: Anchor | null;
}

export class ProofExportError extends Error {
  override readonly name = 'ProofExportError';
}

/** "2026-06-21T12:00:05Z", "2026-06-21 12:00:05" (UTC) or unix epoch ms. */
export function parseTime(text: string): number {
  if (/^\d{10,16}$/.test(text)) return Number(text);
  const ms = Date.parse(/[zZ]|[+-]\d\d:?\d\d$/.test(text) ? text : `${text.replace(' ', 'T')}Z`);
  if (!Number.isFinite(ms)) throw new ProofExportError(`--at: expected an ISO time (2026-06-21T12:00:05Z) or unix ms, found "${text}"`);
  return ms;
}

interface LeafRow {
  interval_start_ms: number;
  ts_ms: number;
  power_w: number;
  import_wh: number;
  export_wh: number;
  salt: Buffer;
}

/** The reading at or last before `atMs`, with everything needed to check it. */
export function exportProof(db: BetterSqlite3.Database, atMs: number, anchorOf: (intervalStartMs: number) => Anchor | null): ProofExport {
  const leaf = db
    .prepare('SELECT interval_start_ms, ts_ms, power_w, import_wh, export_wh, salt FROM meter_leaves WHERE ts_ms <= ? ORDER BY ts_ms DESC LIMIT 1')
    .get(atMs) as LeafRow | undefined;
  if (!leaf) throw new ProofExportError(`no metering reading at or before ${new Date(atMs).toISOString()} (none kept, or before metering started)`);
  const row = db.prepare('SELECT * FROM meter_proofs WHERE interval_start_ms = ?').get(leaf.interval_start_ms) as
    | { interval_start_ms: number; interval_end_ms: number; gateway: string; leaf_count: number; root: string; import_wh: number; export_wh: number; signature: string }
    | undefined;
  if (!row) {
    throw new ProofExportError(`the interval of ${new Date(leaf.ts_ms).toISOString()} is still open: its proof is made when it ends`);
  }
  const gateway = row.gateway as Hex;
  const rows = db
    .prepare('SELECT interval_start_ms, ts_ms, power_w, import_wh, export_wh, salt FROM meter_leaves WHERE interval_start_ms = ? ORDER BY ts_ms')
    .all(leaf.interval_start_ms) as LeafRow[];
  const readings: MeterReading[] = rows.map((r) => ({ gateway, ts: r.ts_ms, powerW: r.power_w, importWh: r.import_wh, exportWh: r.export_wh, salt: `0x${r.salt.toString('hex')}` }));
  const index = rows.findIndex((r) => r.ts_ms === leaf.ts_ms);
  const tree = treeOfReadings(readings);
  if (tree.size !== row.leaf_count || tree.root() !== row.root) {
    throw new ProofExportError(`the stored leaves of interval ${new Date(row.interval_start_ms).toISOString()} do not give its signed root (store damaged?)`);
  }
  const { path } = tree.proof(index);
  const message: MeterProof = {
    gateway,
    intervalStart: row.interval_start_ms,
    intervalEnd: row.interval_end_ms,
    count: row.leaf_count,
    root: row.root as Hex,
    importWh: row.import_wh,
    exportWh: row.export_wh,
  };
  return { reading: readings[index]!, index, size: tree.size, path, proof: { type: 'MeterProof', message, signature: row.signature as Hex }, anchor: anchorOf(row.interval_start_ms) };
}

export interface Check {
  what: string;
  ok: boolean;
  detail: string;
}

export interface ChainTarget {
  rpcUrl: string;
  chainId: number;
  proofRegistry: Hex;
}

/** Every check an auditor needs, from the file and the chain only. */
export async function verifyProofExport(json: unknown, chain: ChainTarget): Promise<Check[]> {
  const checks: Check[] = [];
  const add = (what: string, ok: boolean, detail: string) => void checks.push({ what, ok, detail });
  const file = json as Partial<ProofExport>;
  if (typeof file !== 'object' || file === null || !file.reading || !file.proof || typeof file.index !== 'number' || typeof file.size !== 'number' || !Array.isArray(file.path)) {
    add('file', false, 'not a proof export: expected {reading, index, size, path, proof, anchor}');
    return checks;
  }
  const signed = verifyEnvelope(file.proof, { chainId: chain.chainId, expectedType: 'MeterProof' });
  if (!signed.ok) {
    add('gateway signature', false, `${signed.reason}: ${signed.detail}`);
    return checks;
  }
  const proof = signed.envelope.message as MeterProof;
  add('gateway signature', true, `MeterProof signed by ${signed.signer} (the gateway it names), chain id ${chain.chainId}`);
  const reading = file.reading;
  add('reading belongs to the proof', reading.gateway?.toLowerCase() === proof.gateway.toLowerCase() && reading.ts >= proof.intervalStart && reading.ts < proof.intervalEnd,
    `reading of ${reading.gateway} at ${new Date(reading.ts).toISOString()}; interval [${new Date(proof.intervalStart).toISOString()}, ${new Date(proof.intervalEnd).toISOString()})`);
  let leafHash: Hex;
  try {
    leafHash = readingLeafHash(reading);
  } catch (e) {
    add('inclusion', false, `the reading cannot be encoded as a leaf: ${(e as Error).message}`);
    return checks;
  }
  const inclusion = verifyInclusion(leafHash, { index: file.index, size: file.size, path: file.path as Hex[] }, { root: proof.root, count: proof.count });
  add('inclusion', inclusion.ok, inclusion.ok ? `leaf ${file.index} of ${file.size} leads to root ${proof.root} (${file.path.length} hashes)` : `${inclusion.reason}: ${inclusion.detail}`);

  const client = createPublicClient({ transport: http(chain.rpcUrl, { retryCount: 1, timeout: 10_000 }) });
  try {
    const chainId = await client.getChainId();
    if (chainId !== chain.chainId) {
      add('chain', false, `the node at ${chain.rpcUrl} is chain ${chainId}, not ${chain.chainId}`);
      return checks;
    }
    const [root, count, anchored] = await client.readContract({ address: chain.proofRegistry, abi: proofRegistryAbi, functionName: 'rootOf', args: [proof.gateway, BigInt(proof.intervalStart)] });
    add('root on chain', anchored && root === proof.root && count === proof.count,
      anchored ? `registry ${chain.proofRegistry} holds root ${root}, count ${count} for this interval` : `registry ${chain.proofRegistry} has no proof of ${proof.gateway} for ${new Date(proof.intervalStart).toISOString()}`);
    if (file.anchor) {
      const receipt = await client.getTransactionReceipt({ hash: file.anchor.txHash as ViemHex });
      const events = parseEventLogs({ abi: proofRegistryAbi, logs: receipt.logs, eventName: 'ProofAnchored' }).filter(
        (e) => e.address.toLowerCase() === chain.proofRegistry.toLowerCase() && e.args.gateway.toLowerCase() === proof.gateway.toLowerCase() && Number(e.args.intervalStart) === proof.intervalStart,
      );
      const event = events[0];
      add('anchor transaction', receipt.status === 'success' && event !== undefined && event.args.root === proof.root && Number(receipt.blockNumber) === file.anchor.blockNumber,
        event ? `ProofAnchored in tx ${file.anchor.txHash}, block ${receipt.blockNumber}` : `tx ${file.anchor.txHash} has no ProofAnchored event for this interval`);
    }
  } catch (e) {
    add('chain', false, `cannot read the chain at ${chain.rpcUrl}: ${(e as Error).message.split('\n')[0]}`);
  }
  return checks;
}
