/**
 * A Phoenix Contact EV-CC-AC1-M3 charge controller (also in Wallbe Eco/Pro, Compleo Pro), encoded as
 * the vendor documents it (/work/notes/vendor-layouts.md §1): the IEC 61851 state as an ASCII letter
 * in input 100, every 32-bit value an unsigned integer with the LOW word first, the current setpoint
 * in holding 528 (A, FC6, clamped to the installation maximum in holding 300), charging enabled in
 * coil 400. No watchdog: it keeps the last setpoint and enable bit.
 */
import { ExceptionCode, RegisterImage } from '../modbus/image.js';
import type { Stepper } from '../ticker.js';
import { EvCharging, NOMINAL_VOLTAGE_V } from './ev.js';

export const PHOENIX_UNIT_ID = 255;

const REG_STATE = 100;
const REG_CHARGE_TIME = 102;
const REG_VOLTAGES = 108;
const REG_CURRENTS = 114;
const REG_POWER = 120;
const REG_SESSION_ENERGY = 128;
const REG_MAX_CURRENT = 300;
const REG_COIL_ENABLE = 400;
const REG_SETPOINT = 528;
const REG_LIFETIME_ENERGY = 904;

function lowWordFirst(value: number): [number, number] {
  const v = Math.max(0, Math.min(0xffffffff, Math.round(value)));
  return [v & 0xffff, Math.floor(v / 0x10000) & 0xffff];
}

export class PhoenixEvCharger implements Stepper {
  readonly image = new RegisterImage();
  readonly charging: EvCharging;
  /** Setpoint register as last written (A). */
  setpointA: number;

  constructor(charging: EvCharging) {
    this.charging = charging;
    this.setpointA = charging.maxCurrentA;
    const img = this.image;
    img.defineBlock(REG_STATE, 30); // 100..129
    img.defineBlock(REG_MAX_CURRENT, 1);
    img.defineBlock(REG_SETPOINT, 1);
    img.defineBlock(REG_LIFETIME_ENERGY, 2);
    img.setWritable(REG_SETPOINT, 1);
    img.defineCoils(REG_COIL_ENABLE, 1);
    img.setCoil(REG_COIL_ENABLE, true);
    img.set(REG_MAX_CURRENT, [charging.maxCurrentA]);
    img.addWriteHook({
      validate: (w) => (w.address === REG_SETPOINT && (w.values[0]! < 6 || w.values[0]! > 80) ? ExceptionCode.IllegalDataValue : undefined),
      apply: (w) => {
        if (w.address !== REG_SETPOINT) return;
        this.setpointA = Math.min(w.values[0]!, charging.maxCurrentA);
        img.set(REG_SETPOINT, [this.setpointA]);
        this.apply();
      },
    });
    img.onCoilWrite((w) => {
      if (w.address === REG_COIL_ENABLE) this.apply();
    });
    this.apply();
  }

  private apply(): void {
    this.charging.offeredCurrentA = this.setpointA;
    this.charging.enabled = this.image.readCoils(REG_COIL_ENABLE, 1)[0]!;
    this.charging.recompute();
    this.encode(this.charging.sessionStartedMs);
  }

  step(nowMs: number): void {
    this.encode(nowMs);
  }

  private encode(nowMs: number): void {
    const c = this.charging;
    const img = this.image;
    img.set(REG_STATE, [c.pilot.charCodeAt(0)]);
    img.set(REG_CHARGE_TIME, lowWordFirst(c.vehicle ? (nowMs - c.sessionStartedMs) / 1000 : 0));
    const phases = c.powerW > 0 ? c.phases : 0;
    const currentmA = phases > 0 ? (c.powerW / phases / NOMINAL_VOLTAGE_V) * 1000 : 0;
    for (let i = 0; i < 3; i++) {
      img.set(REG_VOLTAGES + 2 * i, lowWordFirst(NOMINAL_VOLTAGE_V));
      img.set(REG_CURRENTS + 2 * i, lowWordFirst(i < phases ? currentmA : 0));
    }
    img.set(REG_POWER, lowWordFirst(c.powerW));
    img.set(REG_SESSION_ENERGY, lowWordFirst(c.sessionEnergyWh));
    img.set(REG_LIFETIME_ENERGY, lowWordFirst(c.lifetimeEnergyWh));
    img.set(REG_SETPOINT, [this.setpointA]);
  }
}
