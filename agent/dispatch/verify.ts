/**
 * Verification of a DispatchOrder as received from the broker (PROTOCOL.md §1–3): the ten checks of
 * the reason table, in its order, returning the first that fails with the status the table gives it.
 * Pure apart from the injected state (the last durable sequence, what is known about an orderId)
 * and the clock: it writes nothing, it never throws on input.
 *
 * Choices where PROTOCOL.md is silent (docs/aggregator-guide.md says the same):
 * - "the window has already ended" is `start` ≠ 0 and `start + durationMs` ≤ now (a window is
 *   [start, start + durationMs)); with `start` 0 the window begins at receipt. A CANCEL's window
 *   fields are ignored, so for it only `validUntil` can make it EXPIRED.
 * - A CANCEL is a new version of the order: its `modification` must be above the known one
 *   (else REPLAY), like any modification.
 * - An orderId is known once a version of it has been accepted; rejected messages do not make it
 *   known. A modification or CANCEL of an order another aggregator placed is UNKNOWN_ORDER.
 * - OUT_OF_RANGE also when `randomizeMs` ≥ `durationMs` (the random offset could use up the window).
 */
import type { Clock } from '../../drivers/clock.js';
import { digest, parseEnvelope, parseWireJson, recoverDigestSigner, type DispatchOrder, type Envelope } from '../../ledger-client/eip712.js';
import { fieldProblem, isBytes32, type Address, type Hex } from '../../ledger-client/wire.js';
import {
  CLOCK_SKEW_MS,
  MAX_DURATION_MS,
  MAX_START_AHEAD_MS,
  REASONS,
  REASON_NAMES,
  REJECTION_STATUS,
  SIGNALS,
  type ReasonName,
  type RejectionReason,
} from './protocol.js';

export const ZERO_ORDER_ID: Hex = `0x${'00'.repeat(32)}`;

/** What the verifier needs to know of the stored state. */
export interface VerifierState {
  /** The last sequence that passed checks 1–6 for (aggregator, gateway), durable; undefined if none. */
  lastSequence(aggregator: Address, gateway: Address): number | undefined;
  /** What is known about an orderId (undefined when no version of it was ever accepted). */
  knownOrderId(orderId: Hex): { aggregator: Address; modification: number; live: unknown } | undefined;
}

/** The range a SITE_DELTA order may ask for: the sum of the devices' configured ranges, W. */
export interface DeltaRangeW {
  minW: number;
  maxW: number;
}

export interface OrderVerifierOptions {
  chainId: number;
  /** This gateway's address. */
  gateway: string;
  /** Addresses, any case. */
  trustedAggregators: readonly string[];
  siteMaxImportW: number;
  siteMaxExportW: number;
  /** Asked once per order that reaches the range check. */
  deltaRangeW: () => DeltaRangeW;
  clock: Clock;
  state: VerifierState;
}

export interface AcceptedOrder {
  ok: true;
  /** new: an orderId never seen; modification: a higher version of a live order; cancel: signal 0. */
  kind: 'new' | 'modification' | 'cancel';
  /** The message with hex lowercased. */
  order: DispatchOrder;
  envelope: Envelope<'DispatchOrder'>;
  signer: Address;
  /** Every accepted order passed checks 1–6, so its sequence is raised. */
  raisesSequence: true;
}

export interface RejectedOrder {
  ok: false;
  reason: RejectionReason;
  reasonName: ReasonName;
  /** 252, 253 or 254 as the reason table says. */
  status: 252 | 253 | 254;
  /** What is wrong, naming the field. */
  detail: string;
  /** Echoed from the message when it can be read, else zeros. */
  orderId: Hex;
  modification: number;
  /** The recovered signer, when the signature could be recovered. */
  signer: Address | undefined;
  /** The parsed message, when it was well-formed. */
  order: DispatchOrder | undefined;
  /** True when the order passed checks 1–6: its sequence is raised even though it is rejected. */
  raisesSequence: boolean;
}

export type OrderVerdict = AcceptedOrder | RejectedOrder;

/** orderId and modification of a message that failed parsing, where they can be read. */
function echoIds(value: unknown): { orderId: Hex; modification: number } {
  let orderId = ZERO_ORDER_ID;
  let modification = 0;
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const message = (value as Record<string, unknown>)['message'];
    if (typeof message === 'object' && message !== null && !Array.isArray(message)) {
      const m = message as Record<string, unknown>;
      const id = Object.prototype.hasOwnProperty.call(m, 'orderId') ? m['orderId'] : undefined;
      const mod = Object.prototype.hasOwnProperty.call(m, 'modification') ? m['modification'] : undefined;
      if (isBytes32(id)) orderId = id.toLowerCase() as Hex;
      if (fieldProblem('uint32', mod) === undefined) modification = mod as number;
    }
  }
  return { orderId, modification };
}

export class OrderVerifier {
  private readonly trusted: ReadonlySet<string>;
  private readonly gateway: Address;

  constructor(private readonly options: OrderVerifierOptions) {
    this.trusted = new Set(options.trustedAggregators.map((a) => a.toLowerCase()));
    this.gateway = options.gateway.toLowerCase() as Address;
  }

  /** Runs the checks of PROTOCOL.md §3 on a payload from the order topic. Never throws on input. */
  verify(raw: Uint8Array | string, nowMs: number = this.options.clock.now()): OrderVerdict {
    const { options } = this;
    const json = parseWireJson(raw);
    if (!json.ok) return rejection('MALFORMED', json.detail, echoIds(undefined), {});
    const parsed = parseEnvelope(json.value, { expectedType: 'DispatchOrder' });
    if (!parsed.ok) return rejection('MALFORMED', parsed.detail, echoIds(json.value), {});
    const envelope = parsed.envelope as Envelope<'DispatchOrder'>;
    const order = envelope.message;
    const ids = { orderId: order.orderId, modification: order.modification };

    // 2. BAD_SIGNATURE
    const recovered = recoverDigestSigner(digest('DispatchOrder', order, options.chainId), envelope.signature);
    if (!recovered.ok) return rejection(recovered.reason === 'MALFORMED' ? 'MALFORMED' : 'BAD_SIGNATURE', recovered.detail, ids, { order });
    const signer = recovered.signer;
    if (signer !== order.aggregator) {
      return rejection('BAD_SIGNATURE', `signature: signed by ${signer}, not by message.aggregator ${order.aggregator}`, ids, { order, signer });
    }
    const known = { order, signer };
    // 3. UNTRUSTED_AGGREGATOR
    if (!this.trusted.has(signer)) return rejection('UNTRUSTED_AGGREGATOR', `aggregator ${signer} is not trusted by this gateway (dispatch.trustedAggregators)`, ids, known);
    // 4. WRONG_GATEWAY
    if (order.gateway !== this.gateway) return rejection('WRONG_GATEWAY', `message.gateway: ${order.gateway} is not this gateway (${this.gateway})`, ids, known);
    // 5. EXPIRED
    if (nowMs > order.validUntil) return rejection('EXPIRED', `message.validUntil: ${order.validUntil} has passed (now ${nowMs})`, ids, known);
    const isCancel = order.signal === SIGNALS.CANCEL;
    if (!isCancel && order.start !== 0 && order.start + order.durationMs <= nowMs) {
      return rejection('EXPIRED', `message.start: the window [${order.start}, ${order.start + order.durationMs}) has ended (now ${nowMs})`, ids, known);
    }
    // 6. REPLAY
    const last = options.state.lastSequence(signer, this.gateway);
    if (last !== undefined && order.sequence <= last) {
      return rejection('REPLAY', `message.sequence: ${order.sequence} is not above the last one seen from ${signer} (${last})`, ids, known);
    }
    const knownId = options.state.knownOrderId(order.orderId);
    if (knownId !== undefined && order.modification <= knownId.modification) {
      return rejection('REPLAY', `message.modification: ${order.modification} is not above the known one of order ${order.orderId} (${knownId.modification})`, ids, known);
    }
    // From here on the order passed checks 1–6: its sequence is raised whatever follows.
    const passed = { ...known, raisesSequence: true };
    // 7. CLOCK_SKEW
    if (order.issuedAt > nowMs + CLOCK_SKEW_MS) {
      return rejection('CLOCK_SKEW', `message.issuedAt: ${order.issuedAt} is more than ${CLOCK_SKEW_MS} ms ahead of the gateway's clock (${nowMs})`, ids, passed);
    }
    // 8. UNSUPPORTED_SIGNAL
    if (order.signal > SIGNALS.SITE_DELTA) return rejection('UNSUPPORTED_SIGNAL', `message.signal: ${order.signal} is not a signal of PROTOCOL.md §3 (0–4)`, ids, passed);
    // 9. OUT_OF_RANGE
    if (!isCancel) {
      const problem = this.rangeProblem(order, nowMs);
      if (problem !== undefined) return rejection('OUT_OF_RANGE', problem, ids, passed);
    }
    // 10. UNKNOWN_ORDER
    if (isCancel || order.modification > 0) {
      if (knownId === undefined || !knownId.live || knownId.aggregator !== signer) {
        const what = isCancel ? 'CANCEL' : `modification ${order.modification}`;
        const why = knownId === undefined ? 'was never accepted' : knownId.aggregator !== signer ? `belongs to another aggregator` : 'has ended';
        return rejection('UNKNOWN_ORDER', `message.orderId: ${what} for order ${order.orderId}, which ${why}`, ids, passed);
      }
    }
    return { ok: true, kind: isCancel ? 'cancel' : knownId !== undefined ? 'modification' : 'new', order, envelope, signer, raisesSequence: true };
  }

  private rangeProblem(order: DispatchOrder, nowMs: number): string | undefined {
    const { siteMaxImportW, siteMaxExportW } = this.options;
    if (order.durationMs === 0) return 'message.durationMs: 0 (a window must have a length)';
    if (order.durationMs > MAX_DURATION_MS) return `message.durationMs: ${order.durationMs} is over 24 h (${MAX_DURATION_MS})`;
    if (order.start !== 0 && order.start > nowMs + MAX_START_AHEAD_MS) return `message.start: ${order.start} is more than 48 h ahead (now ${nowMs})`;
    if (order.randomizeMs >= order.durationMs) return `message.randomizeMs: ${order.randomizeMs} is not below durationMs ${order.durationMs}`;
    const v = order.valueW;
    switch (order.signal) {
      case SIGNALS.SITE_IMPORT_LIMIT:
        if (v < 0) return `message.valueW: ${v} < 0 for SITE_IMPORT_LIMIT`;
        if (v > siteMaxImportW) return `message.valueW: ${v} is above the site's import maximum (${siteMaxImportW} W)`;
        return undefined;
      case SIGNALS.SITE_EXPORT_LIMIT:
        if (v < 0) return `message.valueW: ${v} < 0 for SITE_EXPORT_LIMIT`;
        if (v > siteMaxExportW) return `message.valueW: ${v} is above the site's export maximum (${siteMaxExportW} W)`;
        return undefined;
      case SIGNALS.SITE_SETPOINT:
        if (v > siteMaxImportW) return `message.valueW: ${v} is above the site's import maximum (${siteMaxImportW} W)`;
        if (v < -siteMaxExportW) return `message.valueW: ${v} is beyond the site's export maximum (−${siteMaxExportW} W)`;
        return undefined;
      case SIGNALS.SITE_DELTA: {
        const range = this.options.deltaRangeW();
        if (v < range.minW || v > range.maxW) return `message.valueW: ${v} is outside what the devices can move [${range.minW}, ${range.maxW}] W`;
        return undefined;
      }
      default:
        return undefined;
    }
  }
}

function rejection(
  name: Exclude<ReasonName, 'DEVICE_FAULT' | 'SAFETY_LIMIT'>,
  detail: string,
  ids: { orderId: Hex; modification: number },
  extra: { order?: DispatchOrder; signer?: Address; raisesSequence?: boolean },
): RejectedOrder {
  const reason = REASONS[name];
  return {
    ok: false,
    reason,
    reasonName: REASON_NAMES[reason]!,
    status: REJECTION_STATUS[reason],
    detail,
    orderId: ids.orderId,
    modification: ids.modification,
    signer: extra.signer,
    order: extra.order,
    raisesSequence: extra.raisesSequence ?? false,
  };
}
