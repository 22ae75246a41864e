/**
 * Shared pieces of the order-book tests (not library code): the golden-vector keys, order messages
 * and envelopes, a store with the whole order side on a manual clock, a recording status transport
 * and a recording dispatcher side.
 */
import { readFileSync } from 'node:fs';
import { silentLog } from '../../drivers/log.js';
import { addressOf, signEnvelope, type DispatchOrder, type Envelope, type Hex } from '../../ledger-client/eip712.js';
import type { Address } from '../../ledger-client/wire.js';
import { AuditLog } from '../store/audit-log.js';
import { DispatchStore } from '../store/dispatch-store.js';
import { openStore, type Store } from '../store/index.js';
import { ManualClock } from '../store/test-clock.js';
import { OrderBook, type OrderBookOptions } from './order-book.js';
import { StatusOutbox, type StatusSigner, type StatusTransport } from './statuses.js';
import type { OrderExecution } from './types.js';

interface VectorKey {
  privateKey: Hex;
  address: Address;
}
export interface Eip712Vectors {
  domain: { chainId: number };
  keys: { aggregator: VectorKey; gateway: VectorKey };
  messages: { type: string; digest: Hex; structHash: Hex; envelope: { type: string; message: Record<string, unknown>; signature: Hex } }[];
}

export const vectors = JSON.parse(readFileSync(new URL('../../ledger-client/vectors/eip712.json', import.meta.url), 'utf8')) as Eip712Vectors;
export const CHAIN_ID = vectors.domain.chainId;
export const AGGREGATOR = vectors.keys.aggregator;
export const GATEWAY = vectors.keys.gateway;

function keyOf(privateKey: Hex): VectorKey {
  return { privateKey, address: addressOf(privateKey) };
}
/** A second trusted aggregator. */
export const AGGREGATOR_2 = keyOf(`0x${'33'.repeat(32)}`);
/** Not trusted by the test gateway. */
export const STRANGER = keyOf(`0x${'44'.repeat(32)}`);
/** Another gateway. */
export const OTHER_GATEWAY = keyOf(`0x${'55'.repeat(32)}`);

export const vectorOrder = vectors.messages.find((m) => m.type === 'DispatchOrder')!.envelope as unknown as Envelope<'DispatchOrder'>;
export const vectorStatus = vectors.messages.find((m) => m.type === 'OrderStatus')!.envelope as unknown as Envelope<'OrderStatus'>;

/** 2025-11-24T16:00:00Z, the vectors' epoch. */
export const T0 = 1_764_000_000_000;
export const MINUTE_MS = 60_000;

export const SITE = { siteMaxImportW: 17_000, siteMaxExportW: 10_000, deltaRangeW: { minW: -8000, maxW: 6000 } } as const;

let orderCounter = 0;
/** A fresh orderId (deterministic within a run). */
export function newOrderId(): Hex {
  orderCounter++;
  return `0x${orderCounter.toString(16).padStart(8, '0')}${'ab'.repeat(28)}`;
}

/** A valid SITE_IMPORT_LIMIT order from AGGREGATOR to GATEWAY issued at `nowMs`, window now + 15 min. */
export function orderMessage(nowMs: number, overrides: Partial<DispatchOrder> = {}): DispatchOrder {
  return {
    orderId: newOrderId(),
    aggregator: AGGREGATOR.address,
    gateway: GATEWAY.address,
    auctionId: `0x${'00'.repeat(32)}`,
    sequence: nowMs,
    issuedAt: nowMs,
    validUntil: nowMs + 30_000,
    start: 0,
    durationMs: 15 * MINUTE_MS,
    randomizeMs: 0,
    rampMs: 0,
    signal: 1,
    valueW: 3000,
    priceMicros: 0,
    modification: 0,
    ...overrides,
  };
}

export function envelopeOf(message: DispatchOrder, privateKey: Hex = AGGREGATOR.privateKey, chainId = CHAIN_ID): Envelope<'DispatchOrder'> {
  return signEnvelope(privateKey, 'DispatchOrder', message, chainId);
}

export function signed(message: DispatchOrder, privateKey: Hex = AGGREGATOR.privateKey): string {
  return JSON.stringify(envelopeOf(message, privateKey));
}

/** A status transport that records what is published and acks (or holds, or fails) on demand. */
export class RecordingTransport implements StatusTransport {
  connected = true;
  mode: 'ack' | 'hold' | 'fail' = 'ack';
  readonly published: string[] = [];
  private readonly held: (() => void)[] = [];
  private readonly listeners = new Set<() => void>();

  publishStatus(payload: string): Promise<void> {
    this.published.push(payload);
    if (this.mode === 'fail') return Promise.reject(new Error('publish failed'));
    if (this.mode === 'hold') return new Promise((resolve) => this.held.push(resolve));
    return Promise.resolve();
  }

  /** Acknowledges every held publish. */
  releaseHeld(): void {
    for (const r of this.held.splice(0)) r();
  }

  onConnect(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  reconnect(): void {
    this.connected = true;
    for (const l of this.listeners) l();
  }

  /** The statuses published so far, parsed. */
  messages(): Envelope<'OrderStatus'>['message'][] {
    return this.published.map((p) => (JSON.parse(p) as Envelope<'OrderStatus'>).message);
  }
}

/** The dispatcher's side, recording every call. */
export class RecordingExecution implements OrderExecution {
  calls = 0;
  readonly delivered = new Map<string, number>();
  readonly limited = new Set<string>();
  deliveredWh(key: string): number {
    this.calls++;
    return this.delivered.get(key) ?? 0;
  }
  safetyLimited(key: string): boolean {
    this.calls++;
    return this.limited.has(key);
  }
}

export interface TestSide {
  store: Store;
  dispatch: DispatchStore;
  audit: AuditLog;
  statuses: StatusOutbox;
  book: OrderBook;
  /** Another OrderBook on the same store and status outbox (it loads the live orders from the store). */
  makeBook(): OrderBook;
  clock: ManualClock;
  transport: RecordingTransport;
  execution: RecordingExecution;
  /** A new OrderBook and StatusOutbox on the same store (as after a restart of the agent). */
  restart(): void;
  close(): Promise<void>;
}

export interface TestSideOptions {
  path?: string;
  nowMs?: number;
  clock?: ManualClock;
  trustedAggregators?: string[];
  random?: () => number;
  sign?: StatusSigner;
  book?: Partial<OrderBookOptions>;
  startStatuses?: boolean;
  whenLoopIdle?: () => Promise<unknown>;
}

/** The order side on a store (default in memory) at `nowMs` (default T0), trusting AGGREGATOR and AGGREGATOR_2. */
export function makeSide(options: TestSideOptions = {}): TestSide {
  const clock = options.clock ?? new ManualClock(options.nowMs ?? T0);
  const store = openStore({ path: options.path ?? ':memory:', clock, log: silentLog });
  const transport = new RecordingTransport();
  const execution = new RecordingExecution();
  const side = {} as TestSide;
  const build = () => {
    const dispatch = new DispatchStore(store.database);
    const audit = new AuditLog(store.database, clock);
    const statuses = new StatusOutbox({
      store: dispatch,
      audit,
      gateway: GATEWAY.address,
      privateKey: GATEWAY.privateKey,
      chainId: CHAIN_ID,
      clock,
      log: silentLog,
      resendMs: 30_000,
      transport,
      ...(options.sign ? { sign: options.sign } : {}),
      ...(options.whenLoopIdle ? { whenLoopIdle: options.whenLoopIdle } : {}),
    });
    const makeBook = () => new OrderBook({
      store: dispatch,
      audit,
      statuses,
      clock,
      log: silentLog,
      gateway: GATEWAY.address,
      chainId: CHAIN_ID,
      trustedAggregators: options.trustedAggregators ?? [AGGREGATOR.address.toUpperCase().replace('0X', '0x'), AGGREGATOR_2.address],
      siteMaxImportW: SITE.siteMaxImportW,
      siteMaxExportW: SITE.siteMaxExportW,
      deltaRangeW: () => SITE.deltaRangeW,
      execution,
      // an explicit `random: undefined` gets the book's default (node:crypto)
      ...('random' in options ? (options.random ? { random: options.random } : {}) : { random: () => 0.5 }),
      ...options.book,
    });
    const book = makeBook();
    if (options.startStatuses !== false) statuses.start();
    Object.assign(side, { dispatch, audit, statuses, book, makeBook });
  };
  build();
  Object.assign(side, {
    store,
    clock,
    transport,
    execution,
    restart: () => {
      void side.statuses.stop();
      build();
    },
    close: async () => {
      await side.statuses.stop();
      store.close();
    },
  });
  return side;
}

/** Lets the status outbox's promise chains run. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
  await new Promise((r) => setImmediate(r));
}
