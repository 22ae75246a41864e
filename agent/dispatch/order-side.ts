/**
 * One call that builds the protocol side of dispatch from the agent's parts: the store modules
 * (orders and statuses, audit log, restore ledger), the status outbox and the order book, and the
 * order queue for the uplink's callback. agent.ts wires it:
 *
 * ```ts
 * const side = createOrderSide({ db: store.database, clock, log, key, dispatch: config.dispatch,
 *   chainId: config.dispatch.chainId ?? config.chain!.chainId, deltaRangeW: () => …,
 *   transport: uplink.statusTransport(), enqueue: (task) => loop.enqueue(task) });
 * uplink.onOrder((raw) => side.intake.push(raw));   // before uplink.start(), or any time
 * side.start();                                      // publishes pending statuses, resends
 * // each control cycle, in the loop: side.book.tick(now); dispatcher.run(side.book.activeOrders(now))
 * // the dispatcher gets side.book (DispatchFeedback), side.audit (SetpointAudit), side.restoreLedger;
 * // side.book.attachExecution(dispatcher) once it exists.
 * await side.stop();                                 // before the store closes
 * ```
 */
import type BetterSqlite3 from 'better-sqlite3';
import type { Clock } from '../../drivers/clock.js';
import type { Log } from '../../drivers/log.js';
import type { Address, Hex } from '../../ledger-client/wire.js';
import { AuditLog } from '../store/audit-log.js';
import { DispatchStore } from '../store/dispatch-store.js';
import { SqliteRestoreLedger } from '../store/restore-ledger.js';
import { OrderIntake } from './intake.js';
import { OrderBook } from './order-book.js';
import { StatusOutbox, type StatusTransport } from './statuses.js';
import type { OrderExecution } from './types.js';
import type { DeltaRangeW } from './verify.js';

export interface OrderSideOptions {
  /** The agent store's connection (`store.database`), migrated to step 4. */
  db: BetterSqlite3.Database;
  clock: Clock;
  log: Log;
  /** The gateway key: statuses are signed with it, orders must name its address. */
  key: { privateKey: Hex; address: Address };
  /** The config's `dispatch:` section. */
  dispatch: { trustedAggregators: readonly string[]; siteMaxImportW: number; siteMaxExportW: number; statusResendMs: number };
  /** dispatch.chainId, else chain.chainId. */
  chainId: number;
  deltaRangeW: () => DeltaRangeW;
  /** The uplink's ack topic (`uplink.statusTransport()`); without it statuses wait in the store. */
  transport?: StatusTransport;
  /** The control loop's enqueue, for the order queue. */
  enqueue: (task: () => void) => Promise<unknown>;
  /** Resolves when the loop's serial section is idle: statuses are signed then (StatusOutbox). */
  whenLoopIdle?: () => Promise<unknown>;
  execution?: OrderExecution;
  onChange?: () => void;
  /** Uniform in [0, 1) for the random start offsets (tests); default node:crypto. */
  random?: () => number;
  maxPendingOrders?: number;
}

export interface OrderSide {
  readonly store: DispatchStore;
  readonly audit: AuditLog;
  readonly restoreLedger: SqliteRestoreLedger;
  readonly statuses: StatusOutbox;
  readonly book: OrderBook;
  readonly intake: OrderIntake;
  start(): void;
  stop(): Promise<void>;
}

export function createOrderSide(options: OrderSideOptions): OrderSide {
  const { db, clock, log, key, dispatch } = options;
  const store = new DispatchStore(db);
  const audit = new AuditLog(db, clock);
  const restoreLedger = new SqliteRestoreLedger(db);
  const statuses = new StatusOutbox({
    store,
    audit,
    gateway: key.address,
    privateKey: key.privateKey,
    chainId: options.chainId,
    clock,
    log: log.child({ module: 'dispatch.statuses' }),
    resendMs: dispatch.statusResendMs,
    ...(options.transport ? { transport: options.transport } : {}),
    ...(options.whenLoopIdle ? { whenLoopIdle: options.whenLoopIdle } : {}),
  });
  const book = new OrderBook({
    store,
    audit,
    statuses,
    clock,
    log: log.child({ module: 'dispatch.orders' }),
    gateway: key.address,
    chainId: options.chainId,
    trustedAggregators: dispatch.trustedAggregators,
    siteMaxImportW: dispatch.siteMaxImportW,
    siteMaxExportW: dispatch.siteMaxExportW,
    deltaRangeW: options.deltaRangeW,
    ...(options.execution ? { execution: options.execution } : {}),
    ...(options.onChange ? { onChange: options.onChange } : {}),
    ...(options.random ? { random: options.random } : {}),
  });
  const intake = new OrderIntake({
    enqueue: options.enqueue,
    submit: (raw) => book.submit(raw),
    log: log.child({ module: 'dispatch.intake' }),
    ...(options.maxPendingOrders !== undefined ? { maxPending: options.maxPendingOrders } : {}),
  });
  return {
    store,
    audit,
    restoreLedger,
    statuses,
    book,
    intake,
    start: () => statuses.start(),
    stop: () => statuses.stop(),
  };
}
