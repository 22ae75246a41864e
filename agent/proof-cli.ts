/** What `flexgate proof export` and `flexgate proof verify` run (agent/proofs.ts does the work). */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { systemClock } from '../drivers/clock.js';
import { silentLog } from '../drivers/log.js';
import type { Hex } from '../ledger-client/eip712.js';
import { STORE_FILE } from './agent.js';
import type { Config } from './config/schema.js';
import { exportProof, parseTime, ProofExportError, verifyProofExport, type Anchor } from './proofs.js';
import { openStore } from './store/index.js';

export function runProofExport(config: Config, at: string): number {
  const atMs = parseTime(at);
  const path = join(config.gateway.dataDir, STORE_FILE);
  if (!existsSync(path)) throw new ProofExportError(`no store at ${path} (has the agent run with this config?)`);
  const store = openStore({ path, clock: systemClock, log: silentLog, readOnly: true });
  try {
    const anchorOf = (intervalStartMs: number): Anchor | null => {
      const row = store.database
        .prepare("SELECT anchor_tx_hash, anchor_block_number FROM outbox_items WHERE interval_start_ms = ? AND state IN ('mined', 'confirmed')")
        .get(intervalStartMs) as { anchor_tx_hash: string; anchor_block_number: number } | undefined;
      return row ? { txHash: row.anchor_tx_hash as Hex, blockNumber: row.anchor_block_number } : null;
    };
    const result = exportProof(store.database, atMs, anchorOf);
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    if (!result.anchor) process.stderr.write('note: this interval is not anchored on the chain yet ("anchor": null); export it again once it is\n');
    return 0;
  } finally {
    store.close();
  }
}

export async function runProofVerify(file: string, chain: { rpcUrl: string; chainId: number; proofRegistry: string }): Promise<number> {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    process.stderr.write(`flexgate proof verify: cannot read ${file} as JSON: ${(e as Error).message}\n`);
    return 1;
  }
  const checks = await verifyProofExport(json, { rpcUrl: chain.rpcUrl, chainId: chain.chainId, proofRegistry: chain.proofRegistry as Hex });
  for (const c of checks) process.stdout.write(`${c.ok ? 'OK  ' : 'FAIL'} ${c.what}: ${c.detail}\n`);
  const failed = checks.filter((c) => !c.ok);
  process.stdout.write(failed.length === 0 ? 'the reading is proven: it is in the signed interval anchored on the chain\n' : `NOT proven: ${failed.map((c) => c.what).join(', ')} failed\n`);
  return failed.length === 0 ? 0 : 1;
}
