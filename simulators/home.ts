import { VirtualClock } from './clock.js';
import { HomeBattery } from './devices/battery.js';
import { SiteMeter } from './devices/meter.js';
import { PvInverter } from './devices/pv.js';
import { PtyPair } from './modbus/pty.js';
import { ModbusRtuServer } from './modbus/rtu-server.js';
import { ModbusTcpServer } from './modbus/tcp-server.js';
import type { Fault } from './modbus/units.js';
import { Ticker } from './ticker.js';

export type HomeDeviceId = 'pv' | 'battery' | 'meter';

export interface HomeDevice {
  id: HomeDeviceId;
  class: 'pv' | 'battery' | 'meter';
  modbus?: { host: string; port: number; unitId: number };
  /** `path` is the side of the pty pair the agent opens. */
  rtu?: { path: string; baudRate: number; unitId: number };
}

export interface SimulatedHomeOptions {
  /** Default: a new VirtualClock at startTimeMs running at `speed`. */
  clock?: VirtualClock;
  /** Seeds clouds and household load. Default 1. */
  seed?: number;
  /** Simulated start time (epoch ms), used when no clock is given. Default: today 12:00 UTC. */
  startTimeMs?: number;
  /** Clock speed when no clock is given. Default 1. */
  speed?: number;
  /** Physics tick in clock ms. Default 1000. */
  tickMs?: number;
  /** Put the meter on a Modbus RTU line (socat pty pair) as unit 1 instead of unit 2 of gateway B. */
  meterOnRtu?: { baudRate: number };
  /** Host the TCP servers bind. Default 127.0.0.1. */
  host?: string;
  /** TCP ports of server A (PV) and server B (battery + meter). Default 0: free ports. */
  ports?: { pv?: number; gateway?: number };
  /** SunSpec variants. Defaults: PV 'inverter' (1+103+120+123), battery 'inverter' (1+103+124), meter 'wye' (1+203). */
  variants?: { pv?: 'inverter' | 'der'; battery?: 'inverter' | 'der'; meter?: 'wye' | 'der' };
  /** Rated PV power. Default 8000. */
  pvRatedPowerW?: number;
  /** PV cloudiness 0..1. Default 0.3. */
  cloudiness?: number;
  /** Fixed base load instead of the household profile. */
  baseLoadW?: number;
  /** Battery state of charge at start. Default 50. */
  batteryInitialSocPct?: number;
}

function todayNoonUtcMs(): number {
  const d = new Date();
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate(), 12);
}

/**
 * A home with a PV inverter (TCP server A, unit 1), a battery (TCP server B, unit 1) and a site meter
 * (server B unit 2, or unit 1 on an RTU line over a socat pty pair), all stepped by one ticker on one
 * virtual clock, in the order PV → battery → meter.
 */
export class SimulatedHome {
  readonly clock: VirtualClock;
  readonly pv: PvInverter;
  readonly battery: HomeBattery;
  readonly meter: SiteMeter;
  readonly devices: HomeDevice[] = [];
  readonly ticker: Ticker;
  private readonly ownsClock: boolean;
  private serverA: ModbusTcpServer | undefined;
  private serverB: ModbusTcpServer | undefined;
  private rtu: ModbusRtuServer | undefined;
  private pty: PtyPair | undefined;
  private readonly where = new Map<HomeDeviceId, { set(unitId: number, fault: Fault): void; unitId: number }>();

  private constructor(options: SimulatedHomeOptions) {
    this.ownsClock = options.clock === undefined;
    this.clock = options.clock ?? new VirtualClock({ startTimeMs: options.startTimeMs ?? todayNoonUtcMs(), speed: options.speed ?? 1 });
    const seed = options.seed ?? 1;
    this.pv = new PvInverter({
      clock: this.clock,
      seed,
      variant: options.variants?.pv ?? 'inverter',
      ratedPowerW: options.pvRatedPowerW ?? 8000,
      cloudiness: options.cloudiness ?? 0.3,
      // A few years of history: SunSpec reads an accumulator of 0 as "not implemented".
      initialEnergyWh: 21_400_000,
    });
    this.battery = new HomeBattery({
      clock: this.clock,
      variant: options.variants?.battery ?? 'inverter',
      initialSocPct: options.batteryInitialSocPct ?? 50,
    });
    const meterOptions: ConstructorParameters<typeof SiteMeter>[0] = {
      clock: this.clock,
      seed,
      variant: options.variants?.meter ?? 'wye',
      pv: this.pv,
      battery: this.battery,
      initialImportWh: 12_650_000,
      initialExportWh: 8_120_000,
    };
    if (options.baseLoadW !== undefined) meterOptions.baseLoadW = options.baseLoadW;
    this.meter = new SiteMeter(meterOptions);
    this.battery.setSurplusSource(() => this.pv.acPowerW - this.meter.loadW(this.clock.now()));
    this.ticker = new Ticker(this.clock, options.tickMs ?? 1000);
    this.ticker.add(this.pv);
    this.ticker.add(this.battery);
    this.ticker.add(this.meter);
  }

  /** Starts the physics and every server; rejects (after cleaning up) when one cannot start. */
  static async start(options: SimulatedHomeOptions = {}): Promise<SimulatedHome> {
    const home = new SimulatedHome(options);
    try {
      await home.startServers(options);
    } catch (e) {
      await home.stop();
      throw e;
    }
    home.ticker.start();
    return home;
  }

  private async startServers(options: SimulatedHomeOptions): Promise<void> {
    const host = options.host ?? '127.0.0.1';
    const seed = options.seed ?? 1;
    this.serverA = new ModbusTcpServer({ host, port: options.ports?.pv ?? 0, seed });
    this.serverA.addUnit(1, this.pv.sunspec.image);
    await this.serverA.start();
    const a = this.serverA;
    this.devices.push({ id: 'pv', class: 'pv', modbus: { host, port: a.port, unitId: 1 } });
    this.where.set('pv', { unitId: 1, set: (u, f) => a.setFault(u, f) });

    this.serverB = new ModbusTcpServer({ host, port: options.ports?.gateway ?? 0, seed: seed + 1 });
    this.serverB.addUnit(1, this.battery.sunspec.image);
    const b = this.serverB;
    if (!options.meterOnRtu) this.serverB.addUnit(2, this.meter.sunspec.image);
    await this.serverB.start();
    this.devices.push({ id: 'battery', class: 'battery', modbus: { host, port: b.port, unitId: 1 } });
    this.where.set('battery', { unitId: 1, set: (u, f) => b.setFault(u, f) });

    if (options.meterOnRtu) {
      this.pty = await PtyPair.start();
      const baudRate = options.meterOnRtu.baudRate;
      this.rtu = new ModbusRtuServer({ path: this.pty.pathA, baudRate, seed: seed + 2 });
      this.rtu.addUnit(1, this.meter.sunspec.image);
      await this.rtu.start();
      const rtu = this.rtu;
      this.devices.push({ id: 'meter', class: 'meter', rtu: { path: this.pty.pathB, baudRate, unitId: 1 } });
      this.where.set('meter', { unitId: 1, set: (u, f) => rtu.setFault(u, f) });
    } else {
      this.devices.push({ id: 'meter', class: 'meter', modbus: { host, port: b.port, unitId: 2 } });
      this.where.set('meter', { unitId: 2, set: (u, f) => b.setFault(u, f) });
    }
  }

  device(id: HomeDeviceId): HomeDevice {
    const d = this.devices.find((x) => x.id === id);
    if (!d) throw new Error(`no device ${id}`);
    return d;
  }

  /** Fault control of one device: `home.faults('meter').set({ kind: 'no-answer' })`, `.clear()`. */
  faults(id: HomeDeviceId): { set(fault: Fault): void; clear(): void } {
    const w = this.where.get(id);
    if (!w) throw new Error(`no device ${id}`);
    return { set: (fault) => w.set(w.unitId, fault), clear: () => w.set(w.unitId, { kind: 'none' }) };
  }

  /** Stops the physics, closes every server and kills socat. Safe to call twice. */
  async stop(): Promise<void> {
    this.ticker.stop();
    this.pv.stop();
    this.battery.stop();
    await this.serverA?.stop();
    await this.serverB?.stop();
    await this.rtu?.stop();
    await this.pty?.stop();
    this.serverA = this.serverB = this.rtu = undefined;
    this.pty = undefined;
    if (this.ownsClock) this.clock.stop();
  }
}
