/**
 * An ABL eMH1 / eMH2 wallbox (SENEC Wallbox pro), encoded as the vendor documents it
 * (/work/notes/vendor-layouts.md §2), in front of an EvCharging session. Served over Modbus ASCII at
 * 38400 8E1, unit 1 (ModbusRtuServer with framing 'ascii'). Holding registers only:
 * - 0x0001-0x0002: firmware / hardware revision;
 * - 0x0004: state code in the HIGH byte: 0xA1 no vehicle, 0xB1 connected (not charging), 0xB2
 *   connected and paused by the EVSE (setpoint "no current"), 0xC2 charging, 0xE0 EVSE disabled;
 * - 0x0005: command, 0xA1A1 enable / 0xE0E0 disable (other values → exception 3; reads 0);
 * - 0x0014: current setpoint as a PWM duty cycle in per mille (IEC 61851: duty % = I / 0.6 A, so
 *   6 A = 100, 16 A = 266, 32 A = 533), 100..533, or the sentinel 1000 (0x03E8, 100 % duty) = no
 *   current offered (paused); anything else → exception 3;
 * - 0x002E-0x0032: state code (high byte), reserved, phase currents L1..L3 in 0.1 A, 1000 (0x03E8)
 *   when not measured (no vehicle).
 * Writes only as FC16 (FC6 → exception 1), FC4 → exception 2 (no input registers). No power
 * register, no energy counter, no watchdog.
 */
import { ExceptionCode, RegisterImage } from '../modbus/image.js';
import type { Stepper } from '../ticker.js';
import type { EvCharging } from './ev.js';

export const ABL_UNIT_ID = 1;
/** 100 % duty cycle: the EVSE offers no current. Also the "not measured" value of a phase current. */
export const ABL_SENTINEL = 1000;
export const ABL_COMMAND_ENABLE = 0xa1a1;
export const ABL_COMMAND_DISABLE = 0xe0e0;
export const ABL_REGISTERS = { revision: 0x0001, state: 0x0004, command: 0x0005, dutyPerMille: 0x0014, status: 0x002e } as const;
const R = ABL_REGISTERS;
const MIN_DUTY = 100;
const MAX_DUTY = 533;

/** Duty cycle (per mille) that offers `currentA`: I / 0.6 A in percent, truncated (16 A → 266). */
export function ablDutyFromCurrentA(currentA: number): number {
  return Math.floor((currentA * 1000) / 60 + 1e-9);
}

/** Current (A) a vehicle reads from a duty cycle in per mille (IEC 61851: 0.6 A per percent). */
export function ablCurrentAFromDuty(dutyPerMille: number): number {
  return dutyPerMille === ABL_SENTINEL ? 0 : (dutyPerMille * 0.6) / 10;
}

export type AblStateCode = 0xa1 | 0xb1 | 0xb2 | 0xc2 | 0xe0;

export class AblEvCharger implements Stepper {
  readonly image = new RegisterImage();
  /** The duty cycle register as it stands. */
  dutyPerMille: number;
  /** Disabled by the 0xE0E0 command. */
  disabled = false;

  constructor(readonly charging: EvCharging) {
    const img = this.image;
    img.quirks = { refuseFc6: true };
    img.defineBlock(R.revision, 2, 'holding');
    img.defineBlock(R.state, 2, 'holding'); // 0x0004, 0x0005
    img.defineBlock(R.dutyPerMille, 1, 'holding');
    img.defineBlock(R.status, 5, 'holding'); // 0x002E..0x0032
    img.setWritable(R.command, 1);
    img.setWritable(R.dutyPerMille, 1);
    img.set(R.revision, [0x0112, 0x0001]);
    this.dutyPerMille = ablDutyFromCurrentA(charging.maxCurrentA);
    img.addWriteHook({
      validate: (w) => {
        for (let i = 0; i < w.values.length; i++) {
          const address = w.address + i;
          const value = w.values[i]!;
          if (address === R.command && value !== ABL_COMMAND_ENABLE && value !== ABL_COMMAND_DISABLE) return ExceptionCode.IllegalDataValue;
          if (address === R.dutyPerMille && value !== ABL_SENTINEL && (value < MIN_DUTY || value > MAX_DUTY)) return ExceptionCode.IllegalDataValue;
        }
        return undefined;
      },
      apply: (w) => {
        for (let i = 0; i < w.values.length; i++) {
          const address = w.address + i;
          if (address === R.command) this.disabled = w.values[i] === ABL_COMMAND_DISABLE;
          if (address === R.dutyPerMille) this.dutyPerMille = w.values[i]!;
        }
        this.apply();
      },
    });
    this.apply();
  }

  get stateCode(): AblStateCode {
    const c = this.charging;
    if (this.disabled) return 0xe0;
    if (!c.vehicle) return 0xa1;
    if (c.powerW > 0) return 0xc2;
    return this.dutyPerMille === ABL_SENTINEL ? 0xb2 : 0xb1;
  }

  private apply(): void {
    const c = this.charging;
    c.offeredCurrentA = ablCurrentAFromDuty(this.dutyPerMille);
    c.enabled = !this.disabled;
    c.recompute();
    this.encode();
  }

  step(): void {
    this.encode();
  }

  private encode(): void {
    const c = this.charging;
    const img = this.image;
    const state = this.stateCode << 8;
    img.set(R.state, [state, 0]);
    img.set(R.dutyPerMille, [this.dutyPerMille]);
    const phases = c.activePhases;
    const deciAmps = Math.round(c.currentA * 10);
    const currents = [0, 1, 2].map((i) => (!c.vehicle ? ABL_SENTINEL : i < phases ? deciAmps : 0));
    img.set(R.status, [state, 0, ...currents]);
  }
}
