/**
 * An ABL eMH1 / eMH2 wallbox, encoded as the vendor documents it (/work/notes/vendor-layouts.md §2):
 * Modbus ASCII at 38400 8E1 (serve it with ModbusRtuServer framing 'ascii'), writes only as FC16; the
 * state code in the high byte of 0x0004 (and of 0x002E); enable/disable by writing 0xA1A1 / 0xE0E0 to
 * 0x0005; the current setpoint as a PWM duty cycle in per mille at 0x0014 (I × 16.6), where 1000
 * (100 %) means "no current offered"; phase currents in 0.1 A at 0x0030..0x0032, 1000 when not
 * measured. No power register, no energy counter, no watchdog.
 */
import { ExceptionCode, RegisterImage } from '../modbus/image.js';
import type { Stepper } from '../ticker.js';
import { NOMINAL_VOLTAGE_V, type EvCharging } from './ev.js';

export const ABL_DUTY_NO_CURRENT = 1000;
const REG_STATE = 0x0004;
const REG_COMMAND = 0x0005;
const REG_DUTY = 0x0014;
const REG_CURRENTS = 0x002e;

export class AblEvCharger implements Stepper {
  readonly image = new RegisterImage();
  dutyPerMille: number;
  disabled = false;

  constructor(readonly charging: EvCharging) {
    const img = this.image;
    img.quirks = { refuseFc6: true };
    img.defineBlock(0x0001, 5); // 0x0001..0x0005
    img.defineBlock(REG_DUTY, 1);
    img.defineBlock(REG_CURRENTS, 5);
    img.setWritable(REG_COMMAND, 1);
    img.setWritable(REG_DUTY, 1);
    img.set(0x0001, [0x0112, 0x0001]);
    this.dutyPerMille = Math.round(charging.maxCurrentA * 16.6);
    img.addWriteHook({
      validate: (w) => {
        if (w.address === REG_COMMAND && w.values[0] !== 0xa1a1 && w.values[0] !== 0xe0e0) return ExceptionCode.IllegalDataValue;
        if (w.address === REG_DUTY) {
          const duty = w.values[0]!;
          if (duty !== ABL_DUTY_NO_CURRENT && (duty < 100 || duty > 533)) return ExceptionCode.IllegalDataValue;
        }
        return undefined;
      },
      apply: (w) => {
        if (w.address === REG_COMMAND) this.disabled = w.values[0] === 0xe0e0;
        if (w.address === REG_DUTY) this.dutyPerMille = w.values[0]!;
        this.apply();
      },
    });
    this.apply();
  }

  private apply(): void {
    const c = this.charging;
    c.offeredCurrentA = this.dutyPerMille === ABL_DUTY_NO_CURRENT ? 0 : this.dutyPerMille / 16.6;
    c.enabled = !this.disabled;
    c.recompute();
    this.encode();
  }

  step(): void {
    this.encode();
  }

  private stateCode(): number {
    const c = this.charging;
    if (this.disabled) return 0xe0;
    if (!c.vehicle) return 0xa1;
    if (c.powerW > 0) return 0xc2;
    return this.dutyPerMille === ABL_DUTY_NO_CURRENT ? 0xb2 : 0xb1;
  }

  private encode(): void {
    const c = this.charging;
    const img = this.image;
    const state = this.stateCode() << 8;
    img.set(REG_STATE, [state]);
    img.set(REG_COMMAND, [0]);
    img.set(REG_DUTY, [this.dutyPerMille]);
    const phases = c.powerW > 0 ? c.phases : 0;
    const deciAmps = phases > 0 ? Math.round((c.powerW / phases / NOMINAL_VOLTAGE_V) * 10) : 0;
    const currents = [0, 1, 2].map((i) => (!c.vehicle ? 1000 : i < phases ? deciAmps : 0));
    img.set(REG_CURRENTS, [state, 0, ...currents]);
  }
}
