/**
 * Child process of durability.test.ts (not library code): opens the store at argv[2] with the order
 * side, and submits signed orders as fast as it can (sequences continue from the stored one), with
 * the uplink down so every status stays pending. After each submit returns it prints
 * `status <orderId> <modification> <status> <sequence>` for each status the submit stored: what the
 * agent would have been allowed to tell the outside. Runs until it is killed.
 * Run: node --import tsx agent/dispatch/durability-child.ts <db path>
 */
import { randomBytes } from 'node:crypto';
import { writeSync } from 'node:fs';
import { systemClock } from '../../drivers/clock.js';
import { silentLog } from '../../drivers/log.js';
import { signEnvelope } from '../../ledger-client/eip712.js';
import { openStore } from '../store/index.js';
import { createOrderSide } from './order-side.js';
import type { StatusTransport } from './statuses.js';
import { AGGREGATOR, CHAIN_ID, GATEWAY, orderMessage } from './test-support.js';

function main(path: string): void {
  const store = openStore({ path, clock: systemClock, log: silentLog });
  const down: StatusTransport = { connected: false, publishStatus: () => Promise.reject(new Error('down')), onConnect: () => () => undefined };
  const side = createOrderSide({
    db: store.database,
    clock: systemClock,
    log: silentLog,
    key: GATEWAY,
    dispatch: { trustedAggregators: [AGGREGATOR.address], siteMaxImportW: 20_000, siteMaxExportW: 20_000, statusResendMs: 60_000 },
    chainId: CHAIN_ID,
    deltaRangeW: () => ({ minW: -5000, maxW: 5000 }),
    transport: down,
    enqueue: async (task) => task(),
  });
  let sequence = side.store.lastSequence(AGGREGATOR.address, GATEWAY.address) ?? 0;
  writeSync(1, `ready ${sequence}\n`);
  for (let i = 0; ; i++) {
    const now = Date.now();
    sequence++;
    // every third order is out of range: rejected, but its sequence is raised all the same
    const message = orderMessage(now, { orderId: `0x${randomBytes(32).toString('hex')}`, sequence, start: now + 60_000 + (i % 50) * 3_600_000, durationMs: 60_000, valueW: i % 3 === 2 ? 999_999 : 1000 });
    const result = side.book.submit(JSON.stringify(signEnvelope(AGGREGATOR.privateKey, 'DispatchOrder', message, CHAIN_ID)));
    for (const s of result.statuses) writeSync(1, `status ${s.orderId} ${s.modification} ${s.status} ${sequence}\n`);
  }
}

const path = process.argv[2];
if (path === undefined) {
  writeSync(2, 'usage: durability-child.ts <db path>\n');
  process.exit(2);
}
main(path);
