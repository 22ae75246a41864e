/**
 * The dispatcher (docs/dispatch.md): turns the active orders into device commands and holds the
 * site meter at the target, one step per control cycle and one at once when an order arrives or
 * ends. It runs only inside the control loop's serial section.
 *
 * Each step:
 *  1. the site meter's reading joins the history; every running order's deliveredWh is integrated
 *     against its baseline (the mean site power over the 60 s before its effective start);
 *  2. the orders combine into one target on the grid power (limits: the tightest; setpoint/delta:
 *     the newest; ramped from where the site was);
 *  3. closed loop: the site's natural power is the meter minus what flexgate moves now (worked out
 *     once per meter reading); the wanted total flex is target − natural (limits: only as far as
 *     needed, with a margin inside them);
 *  4. `allocate` splits it over the devices (battery first, cheapest discomfort next, PV last);
 *  5. the commands go out in parallel (the buses put them before polls); PV and battery commands
 *     carry a revert timer (dead-man switch) and are written again before it runs out; a device
 *     without one is put in the restore ledger before its first change;
 *  6. STARTED once every command of the step was confirmed; a device whose commands fail three
 *     steps in a row aborts the orders (ABORTED, DEVICE_FAULT) and everything is restored.
 * With no active order every device flexgate changed is restored.
 */
import type { Clock } from '../../drivers/clock.js';
import { isDeviceError } from '../../drivers/errors.js';
import type { Device } from '../../drivers/classes.js';
import type { Log } from '../../drivers/log.js';
import type { SiteSnapshot } from '../snapshot.js';
import { createActuator, type Actuator, type ActuatorSettings, type Command, type StepContext } from './actuators.js';
import { allocate, type Unit } from './dispatcher-allocation.js';
import { combineTargets, GridHistory, limitMarginW, meterBeforeBaseline, toleranceW, type OrderTargetInput } from './dispatcher-targets.js';
import type { ActiveOrder, DispatchFeedback, OrderExecution, RestoreLedger, SetpointAudit } from './types.js';

/** A device the dispatcher may move, as the agent knows it. */
export interface DispatchDevice {
  id: string;
  /** The driver object once connected. */
  device: Device | undefined;
  settings: ActuatorSettings;
}

export interface DispatcherOptions {
  clock: Clock;
  log: Log;
  feedback: DispatchFeedback;
  audit: SetpointAudit;
  restoreLedger: RestoreLedger;
  devices: () => readonly DispatchDevice[];
  cycleMs: number;
  /** The baseline is the mean site power over this long before an order starts. Default 60 s. */
  baselineWindowMs?: number;
  /** Revert timer written with PV and battery commands. Default max(30 s, 10 cycles). */
  deadManMs?: number;
  /** Consecutive failed steps of one device before its orders are aborted. Default 3. */
  failuresBeforeAbort?: number;
  /** Runs `fn` in one store transaction (one fsync for a step's ledger rows); default: as is. */
  transaction?: (fn: () => void) => void;
  /** The same without waiting for the fsync (a step's audit rows: a power cut may lose the last ones). */
  lazyTransaction?: (fn: () => void) => void;
}

interface Tracked {
  readonly order: ActiveOrder;
  readonly baselineW: number;
  readonly baselineMethod: string;
  readonly startGridW: number;
  deliveredWh: number;
  /** Integrated up to here, with `lastGridW` held since. */
  integratedToMs: number;
  lastGridW: number;
  startedReported: boolean;
  safetyLimited: boolean;
}

/** The range of total flex the units can reach now, within their limits (W). */
export function capacityW(units: readonly Unit[]): { minW: number; maxW: number } {
  let minW = 0;
  let maxW = 0;
  for (const u of units) {
    if (u.frozen) {
      minW += u.flexNowW;
      maxW += u.flexNowW;
    } else if (u.discrete) {
      const down = u.engaged < 0 ? u.flexNowW : u.canEngageDown ? u.downFlexW : 0;
      const up = u.engaged > 0 ? u.flexNowW : u.canEngageUp ? u.upFlexW : 0;
      const keep = u.engaged !== 0 && !u.canRelease ? u.flexNowW : 0;
      minW += Math.min(down, keep, 0);
      maxW += Math.max(up, keep, 0);
    } else {
      minW += Math.min(u.minFlexW, 0);
      maxW += Math.max(u.maxFlexW, 0);
    }
  }
  return { minW, maxW };
}

export class Dispatcher implements OrderExecution {
  private readonly history: GridHistory;
  private readonly tracked = new Map<string, Tracked>();
  private readonly actuators = new Map<string, Actuator>();
  private readonly failures = new Map<string, number>();
  /** Devices in the restore ledger: kept there while orders run (a device flexgate releases and
   * takes again within an order costs no extra fsync), cleared when no order is left. */
  private readonly ledgered = new Set<string>();
  private lastHistoryTsMs = Number.NEGATIVE_INFINITY;
  /** The site's natural power as worked out from the meter reading of the snapshot at `snapshotTsMs`. */
  private natural: { snapshotTsMs: number; naturalW: number } | undefined;
  private readonly baselineWindowMs: number;
  private readonly deadManMs: number;
  private readonly failuresBeforeAbort: number;

  constructor(private readonly options: DispatcherOptions) {
    this.baselineWindowMs = options.baselineWindowMs ?? 60_000;
    this.deadManMs = options.deadManMs ?? Math.max(30_000, 10 * options.cycleMs);
    this.failuresBeforeAbort = options.failuresBeforeAbort ?? 3;
    // Enough cycles for the baseline window plus margin.
    this.history = new GridHistory(Math.max(16, Math.ceil((2 * this.baselineWindowMs) / Math.max(1, options.cycleMs)) + 8));
  }

  /** Devices flexgate has changed now (for status and tests). */
  activeDevices(): string[] {
    return [...this.actuators.values()].filter((a) => a.active).map((a) => a.id);
  }

  deliveredWh(key: string): number {
    const t = this.tracked.get(key);
    if (!t) return 0;
    const toMs = Math.min(this.options.clock.now(), t.order.endMs);
    return t.deliveredWh + (toMs > t.integratedToMs ? ((t.lastGridW - t.baselineW) * (toMs - t.integratedToMs)) / 3_600_000 : 0);
  }

  safetyLimited(key: string): boolean {
    return this.tracked.get(key)?.safetyLimited ?? false;
  }

  /** The baseline the dispatcher uses for an order (undefined before it ran). */
  baselineOf(key: string): { baselineW: number; method: string } | undefined {
    const t = this.tracked.get(key);
    return t ? { baselineW: t.baselineW, method: t.baselineMethod } : undefined;
  }

  /** One decision: see the file comment. Never throws. */
  async step(snapshot: SiteSnapshot | undefined, orders: readonly ActiveOrder[]): Promise<void> {
    try {
      await this.doStep(snapshot, orders);
    } catch (err) {
      this.options.log.error({ err }, 'dispatch step failed');
    }
  }

  /** Restores every device flexgate changed (agent stop). */
  async releaseAll(): Promise<void> {
    await this.releaseChanged(this.context(this.options.clock.now(), []));
  }

  private context(nowMs: number, orders: readonly ActiveOrder[]): StepContext {
    const horizonEndMs = orders.reduce((max, o) => Math.max(max, o.endMs), nowMs);
    return { nowMs, cycleMs: this.options.cycleMs, deadManMs: this.deadManMs, horizonEndMs };
  }

  private async doStep(snapshot: SiteSnapshot | undefined, orders: readonly ActiveOrder[]): Promise<void> {
    const nowMs = this.options.clock.now();
    const gridW = snapshot?.site.gridPowerW;
    if (snapshot && gridW !== undefined && snapshot.tsMs > this.lastHistoryTsMs) {
      this.history.push(snapshot.tsMs, gridW);
      this.lastHistoryTsMs = snapshot.tsMs;
    }
    // deliveredWh: the grid power held since the last step, against each order's baseline.
    for (const t of this.tracked.values()) {
      const toMs = Math.min(nowMs, t.order.endMs);
      if (toMs > t.integratedToMs) {
        t.deliveredWh += ((t.lastGridW - t.baselineW) * (toMs - t.integratedToMs)) / 3_600_000;
        t.integratedToMs = toMs;
      }
      if (gridW !== undefined) t.lastGridW = gridW;
    }
    const activeKeys = new Set(orders.map((o) => o.key));
    for (const key of [...this.tracked.keys()]) if (!activeKeys.has(key)) this.tracked.delete(key);
    for (const order of orders) {
      if (this.tracked.has(order.key) || gridW === undefined) continue;
      const baseline = meterBeforeBaseline(this.history, order.effectiveStartMs, nowMs, this.baselineWindowMs);
      if (!baseline) continue;
      this.tracked.set(order.key, {
        order,
        baselineW: baseline.baselineW,
        baselineMethod: baseline.method,
        startGridW: gridW,
        deliveredWh: 0,
        integratedToMs: Math.max(order.effectiveStartMs, Math.min(nowMs, order.endMs)),
        lastGridW: gridW,
        startedReported: false,
        safetyLimited: false,
      });
      this.options.log.info({ key: order.key, signal: order.signal, valueW: order.valueW, baselineW: Math.round(baseline.baselineW), method: baseline.method }, 'order running');
    }

    const running = [...this.tracked.values()];
    const ctx = this.context(nowMs, running.map((t) => t.order));
    this.refreshActuators();
    const states = new Map((snapshot?.devices ?? []).map((d) => [d.id, d]));

    if (running.length === 0) {
      await this.releaseChanged(ctx);
      return;
    }
    if (gridW === undefined) {
      this.options.log.warn({}, 'no site meter reading: the orders wait for one');
      return;
    }

    // 2. The target.
    const inputs: OrderTargetInput[] = running.map((t) => ({ order: t.order, baselineW: t.baselineW, startGridW: t.startGridW }));
    const target = combineTargets(inputs, nowMs);

    // 3. Units and the wanted total flex.
    const entries: { actuator: Actuator; unit: Unit }[] = [];
    for (const actuator of this.actuators.values()) {
      const unit = actuator.unit(states.get(actuator.id), ctx);
      if (unit) entries.push({ actuator, unit });
    }
    const flexNowW = entries.reduce((sum, e) => sum + e.unit.flexNowW, 0);
    // The site's natural power (without flexgate) is worked out once per meter reading. A step before
    // the next reading (an order arrived, STARTED was recorded) keeps it: the commands written since
    // that reading are not in it, and subtracting them would make the loop chase its own commands.
    const snapshotTsMs = snapshot!.tsMs;
    let naturalW: number;
    if (this.natural !== undefined && this.natural.snapshotTsMs === snapshotTsMs) naturalW = this.natural.naturalW;
    else {
      naturalW = gridW - flexNowW;
      this.natural = { snapshotTsMs, naturalW };
    }
    let wantW: number;
    let toleranceAtW: number;
    if (target.exactW !== undefined) {
      toleranceAtW = toleranceW(target.exactW);
      const errorW = target.exactW - gridW;
      // Inside a quarter of the tolerance the loop holds still (the base load's noise).
      wantW = Math.abs(errorW) < toleranceAtW / 4 ? flexNowW : target.exactW - naturalW;
    } else {
      wantW = 0;
      toleranceAtW = 100;
      if (target.upperW !== undefined) {
        const marginW = limitMarginW(target.upperW);
        toleranceAtW = toleranceW(target.upperW);
        const holding = flexNowW < 0 && gridW <= target.upperW && gridW >= target.upperW - 3 * marginW;
        wantW = holding ? flexNowW : Math.min(0, target.upperW - marginW - naturalW);
      }
      if (target.lowerW !== undefined) {
        const marginW = limitMarginW(target.lowerW);
        toleranceAtW = toleranceW(target.lowerW);
        const holding = flexNowW > 0 && gridW >= target.lowerW && gridW <= target.lowerW + 3 * marginW;
        wantW = holding ? flexNowW : Math.max(wantW, target.lowerW + marginW - naturalW);
      }
    }

    // 4. Allocation.
    const allocation = allocate(
      entries.map((e) => e.unit),
      wantW,
      { exact: target.exactW !== undefined },
    );
    // Cut back by safety: what is wanted lies beyond everything the devices may do within their
    // limits (not a rounding of discrete steps the meter will correct in the next cycle).
    const capacity = capacityW(entries.map((e) => e.unit));
    const limited = Math.abs(allocation.residualW) > toleranceAtW && (wantW < capacity.minW - toleranceAtW || wantW > capacity.maxW + toleranceAtW);
    if (limited) {
      for (const t of running) {
        const rampDone = nowMs >= t.order.effectiveStartMs + t.order.rampMs;
        const binding = t.order.key === target.exactKey || t.order.key === target.upperKey || t.order.key === target.lowerKey;
        if (rampDone && binding && !t.safetyLimited) {
          t.safetyLimited = true;
          this.options.log.warn({ key: t.order.key, residualW: Math.round(allocation.residualW) }, 'order cut back: the devices cannot do more within their limits');
        }
      }
    }

    // 5. Commands.
    const orderKey = target.exactKey ?? target.upperKey ?? target.lowerKey;
    const planned: { actuator: Actuator; command: Command; orderKey: string | undefined }[] = [];
    entries.forEach((e, i) => {
      const command = e.actuator.command(allocation.flexW[i]!, allocation.engaged[i]!, ctx);
      if (command) planned.push({ actuator: e.actuator, command, orderKey });
    });
    const ok = await this.run(planned, ctx);

    // 6. Feedback.
    const failing = [...this.failures.entries()].filter(([, n]) => n >= this.failuresBeforeAbort).map(([id]) => id);
    if (failing.length > 0) {
      this.options.log.error({ devices: failing }, 'device commands keep failing: aborting the orders and restoring the devices');
      for (const t of running) this.options.feedback.aborted(t.order.key, { atMs: nowMs, deliveredWh: this.deliveredWh(t.order.key) });
      for (const id of failing) this.failures.delete(id);
      return;
    }
    if (ok) {
      for (const t of running) {
        if (t.startedReported) continue;
        t.startedReported = true;
        this.options.feedback.started(t.order.key, { atMs: this.options.clock.now(), safetyLimited: t.safetyLimited });
      }
    }
  }

  /** Creates actuators for newly connected devices (once per device object). */
  private refreshActuators(): void {
    for (const d of this.options.devices()) {
      if (!d.device) continue;
      const existing = this.actuators.get(d.id);
      if (existing && existing.device === d.device) continue;
      if (existing?.active) continue; // keep the state of a device flexgate has changed
      const actuator = createActuator(d.device, d.settings);
      if (actuator) this.actuators.set(d.id, actuator);
    }
  }

  private async releaseChanged(ctx: StepContext): Promise<void> {
    const planned = [...this.actuators.values()].flatMap((a) => {
      const c = a.release(ctx);
      return c ? [{ actuator: a, command: c, orderKey: undefined }] : [];
    });
    await this.run(planned, ctx);
    this.clearLedger();
  }

  /** No order left: the devices flexgate put back leave the restore ledger (one transaction). */
  private clearLedger(): void {
    const restored = [...this.ledgered].filter((id) => !this.actuators.get(id)?.active);
    if (restored.length === 0) return;
    const transaction = this.options.transaction ?? ((fn: () => void) => fn());
    try {
      transaction(() => {
        for (const id of restored) this.options.restoreLedger.markRestored(id);
      });
      for (const id of restored) this.ledgered.delete(id);
    } catch (err) {
      this.options.log.error({ err }, 'could not clear the restore ledger; trying again');
    }
  }

  /**
   * Sends the commands in parallel; true when all were confirmed. The restore ledger learns of every
   * device about to change in one transaction before the first command goes out; the audit rows and
   * the restored devices are written in one transaction after the last answer (one fsync each, off
   * the path from the order to the devices).
   */
  private async run(planned: readonly { actuator: Actuator; command: Command; orderKey: string | undefined }[], ctx: StepContext): Promise<boolean> {
    if (planned.length === 0) return true;
    const { audit, restoreLedger, log } = this.options;
    const transaction = this.options.transaction ?? ((fn: () => void) => fn());
    const isRestore = (c: Command) => c.what === 'restore' || c.what === 'clearLimit' || c.what === 'clearSetpoint';
    const changing = planned.filter(({ actuator, command }) => actuator.needsLedger && !this.ledgered.has(actuator.id) && !isRestore(command));
    if (changing.length > 0) {
      // Durable before the devices change: restored at the next start if flexgate dies.
      try {
        transaction(() => {
          for (const { actuator } of changing) restoreLedger.markChanged(actuator.id, ctx.nowMs);
        });
        for (const { actuator } of changing) this.ledgered.add(actuator.id);
      } catch (err) {
        log.error({ err }, 'could not record the devices about to change: not changing them');
        return false;
      }
    }
    const rows: (() => void)[] = [];
    const results = await Promise.all(
      planned.map(async ({ actuator, command, orderKey }) => {
        const restoring = isRestore(command);
        try {
          await command.run();
          command.confirmed();
          this.failures.delete(actuator.id);
          rows.push(() => audit.setpoint(orderKey, actuator.id, command.what, command.value, true));
          return true;
        } catch (err) {
          const message = err instanceof Error ? err.message : String(err);
          rows.push(() => audit.setpoint(orderKey, actuator.id, command.what, command.value, false, message));
          if (isDeviceError(err) && err.kind === 'refused') {
            actuator.refused(ctx);
            log.info({ device: actuator.id, what: command.what, reason: message }, 'device refused the change');
            return true;
          }
          this.failures.set(actuator.id, (this.failures.get(actuator.id) ?? 0) + 1);
          log.warn({ device: actuator.id, what: command.what, err: message }, 'device command failed');
          return false;
        }
      }),
    );
    const lazy = this.options.lazyTransaction ?? transaction;
    this.safeAudit(() =>
      lazy(() => {
        for (const row of rows) row();
      }),
    );
    return results.every(Boolean);
  }

  private safeAudit(write: () => void): void {
    try {
      write();
    } catch (err) {
      this.options.log.error({ err }, 'could not write the audit row');
    }
  }
}
