/**
 * A Phoenix Contact EV-CC-AC1-M3 charge controller (also in Wallbe Eco/Pro, Compleo Pro), encoded as
 * the vendor documents it (/work/notes/vendor-layouts.md §1), in front of an EvCharging session:
 * - input 100: IEC 61851 state as the ASCII code of its letter ('A' 65, 'B' 66, 'C' 67);
 * - input 102/108/114/120/128: charging time (s), voltages (V), currents (mA), power (W), session
 *   energy (Wh), every one an unsigned 32-bit integer with the LOW word first;
 * - holding 904: lifetime energy (Wh), uint32 low word first;
 * - holding 300: installation maximum current (A, read only); holding 528: current setpoint (A),
 *   6..80 (else exception 3), clamped to register 300, written with FC6 (FC16 works too);
 * - coil 400: charging enabled (FC5 / FC15 write, FC1 read).
 * Input and holding are separate tables (FC3 on an input register → exception 2). No watchdog.
 */
import type { Clock } from '../../drivers/clock.js';
import { ExceptionCode, RegisterImage } from '../modbus/image.js';
import type { Stepper } from '../ticker.js';
import { EvCharging, MIN_CHARGE_CURRENT_A, NOMINAL_VOLTAGE_V } from './ev.js';

/** evcc's and the vendor's unit id for the controller (it ignores the unit id). */
export const PHOENIX_UNIT_ID = 255;

export const PHOENIX_REGISTERS = {
  state: 100,
  chargeTimeS: 102,
  voltagesV: 108,
  currentsMa: 114,
  powerW: 120,
  sessionEnergyWh: 128,
  maxCurrentA: 300,
  enableCoil: 400,
  setpointA: 528,
  lifetimeEnergyWh: 904,
} as const;
const R = PHOENIX_REGISTERS;
const MAX_SETPOINT_A = 80;

/** An unsigned 32-bit value as two registers, low word first (the Phoenix word order). */
export function uint32LowWordFirst(value: number): [number, number] {
  const v = Math.max(0, Math.min(0xffffffff, Math.round(value)));
  return [v % 0x10000, Math.floor(v / 0x10000)];
}

export class PhoenixEvCharger implements Stepper {
  readonly image = new RegisterImage();
  /** Setpoint register as it stands (A, after clamping to register 300). */
  setpointA: number;

  private readonly clock: Clock;

  /** `clock`: default the session's. */
  constructor(
    readonly charging: EvCharging,
    options: { clock?: Clock } = {},
  ) {
    this.clock = options.clock ?? charging.clock;
    this.setpointA = charging.maxCurrentA;
    const img = this.image;
    img.defineBlock(R.state, 30, 'input'); // 100..129
    img.defineBlock(R.maxCurrentA, 1, 'holding');
    img.defineBlock(R.setpointA, 1, 'holding');
    img.defineBlock(R.lifetimeEnergyWh, 2, 'holding');
    img.setWritable(R.setpointA, 1);
    img.defineCoils(R.enableCoil, 1);
    img.setCoil(R.enableCoil, true);
    img.set(R.maxCurrentA, [charging.maxCurrentA]);
    img.addWriteHook({
      validate: (w) => {
        const value = w.values[0]!;
        return w.address === R.setpointA && (value < MIN_CHARGE_CURRENT_A || value > MAX_SETPOINT_A) ? ExceptionCode.IllegalDataValue : undefined;
      },
      apply: (w) => {
        if (w.address !== R.setpointA) return;
        this.setpointA = Math.min(w.values[0]!, charging.maxCurrentA);
        this.apply();
      },
    });
    img.onCoilWrite((w) => {
      if (w.address === R.enableCoil) this.apply();
    });
    this.apply();
  }

  /** Charging enabled (coil 400). */
  get enabled(): boolean {
    return this.image.readCoils(R.enableCoil, 1)[0]!;
  }

  private apply(): void {
    this.charging.offeredCurrentA = this.setpointA;
    this.charging.enabled = this.enabled;
    this.charging.recompute();
    this.encode(this.clock.now());
  }

  step(nowMs: number): void {
    this.encode(nowMs);
  }

  private encode(nowMs: number): void {
    const c = this.charging;
    const img = this.image;
    img.set(R.state, [c.pilot.charCodeAt(0)]);
    img.set(R.chargeTimeS, uint32LowWordFirst(c.vehicle ? (nowMs - c.sessionStartedMs) / 1000 : 0));
    const phases = c.activePhases;
    const currentMa = c.currentA * 1000;
    for (let i = 0; i < 3; i++) {
      img.set(R.voltagesV + 2 * i, uint32LowWordFirst(NOMINAL_VOLTAGE_V));
      img.set(R.currentsMa + 2 * i, uint32LowWordFirst(i < phases ? currentMa : 0));
    }
    img.set(R.powerW, uint32LowWordFirst(c.powerW));
    img.set(R.sessionEnergyWh, uint32LowWordFirst(c.sessionEnergyWh));
    img.set(R.lifetimeEnergyWh, uint32LowWordFirst(c.lifetimeEnergyWh));
    img.set(R.setpointA, [this.setpointA]);
  }
}
