import { VirtualClock } from './clock.js';
import { HomeBattery } from './devices/battery.js';
import { SiteMeter } from './devices/meter.js';
import { PvInverter } from './devices/pv.js';
import { PtyPair } from './modbus/pty.js';
import { ModbusRtuServer } from './modbus/rtu-server.js';
import { ModbusTcpServer } from './modbus/tcp-server.js';
import type { Fault } from './modbus/units.js';
import { Ticker } from './ticker.js';
import { EvCharging } from './devices/ev.js';
import { HeatPump } from './devices/heat-pump.js';
import { LambdaHeatPump } from './devices/lambda-heat-pump.js';
import { PHOENIX_UNIT_ID, PhoenixEvCharger } from './devices/phoenix-ev.js';
import { Sdm120 } from './devices/sdm120.js';
import { WaterHeater } from './devices/water-heater.js';
import { ShellyPlug, type MqttFault } from './mqtt/shelly-plug.js';

export type HomeDeviceId = 'pv' | 'battery' | 'meter' | 'ev' | 'heat-pump' | 'hp-meter' | 'water-heater';

export interface HomeDevice {
  id: HomeDeviceId;
  class: 'pv' | 'battery' | 'meter' | 'ev-charger' | 'hvac' | 'load';
  /** The vendor profile that describes the device (non-SunSpec devices). */
  profile?: string;
  modbus?: { host: string; port: number; unitId: number };
  /** `path` is the side of the pty pair the agent opens. */
  rtu?: { path: string; baudRate: number; unitId: number };
  /** MQTT devices: the device's topic prefix and its state and command topics. */
  mqtt?: { topic: string; stateTopic: string; commandTopic: string };
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
  /** TCP ports of server A (PV), server B (battery + meter + heat pump sub-meter), the EV charger and
   * the heat pump. Default 0: free ports. */
  ports?: { pv?: number; gateway?: number; ev?: number; heatPump?: number };
  /** Add the flexible loads: an EV charger (Phoenix Contact), a heat pump (Lambda) and an Eastron
   * SDM120 on its circuit. Default false: the SunSpec-only home (PV, battery, meter). */
  flexibleLoads?: boolean;
  /** An EV is plugged in at start, wanting this much energy. Default 15 000 Wh; 0 = no EV. */
  evEnergyWantedWh?: number;
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
  /** The EV charging session (physics) and its Phoenix Contact controller; absent without flexibleLoads. */
  readonly ev: EvCharging | undefined;
  readonly evCharger: PhoenixEvCharger | undefined;
  /** The heat pump (physics, 1R1C house) and its Lambda front end; absent without flexibleLoads. */
  readonly heatPump: HeatPump | undefined;
  readonly lambda: LambdaHeatPump | undefined;
  /** The Eastron SDM120 on the heat pump's circuit (unit 3 behind gateway B). */
  readonly hpMeter: Sdm120 | undefined;
  /** The water heater and the Shelly plug that switches it (MQTT, after startMqttDevices). */
  readonly waterHeater: WaterHeater | undefined;
  readonly plug: ShellyPlug | undefined;
  readonly devices: HomeDevice[] = [];
  readonly ticker: Ticker;
  private readonly ownsClock: boolean;
  private serverA: ModbusTcpServer | undefined;
  private serverB: ModbusTcpServer | undefined;
  private serverEv: ModbusTcpServer | undefined;
  private serverHp: ModbusTcpServer | undefined;
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
    if (options.flexibleLoads) {
      this.ev = new EvCharging({ clock: this.clock, maxCurrentA: 16, phases: 3 });
      const wanted = options.evEnergyWantedWh ?? 15_000;
      if (wanted > 0) this.ev.plugIn({ energyWantedWh: wanted, socPct: 35 });
      this.evCharger = new PhoenixEvCharger(this.ev);
      this.heatPump = new HeatPump({ clock: this.clock, seed, initialIndoorC: 21 });
      const clock = this.clock;
      this.lambda = new LambdaHeatPump(this.heatPump, { now: () => clock.now() });
      const hp = this.heatPump;
      this.hpMeter = new Sdm120(() => hp.electricalPowerW);
      const ev = this.ev;
      this.meter.addLoad(() => ev.powerW);
      this.meter.addLoad(() => hp.electricalPowerW);
      const heater = new WaterHeater({ clock: this.clock, seed });
      this.waterHeater = heater;
      this.plug = new ShellyPlug({ clock: this.clock, load: heater, prefix: 'shellyplusplugs-d4d4daecf1a0' });
      this.meter.addLoad(() => heater.powerW);
    }
    this.battery.setSurplusSource(() => this.pv.acPowerW - this.meter.loadW(this.clock.now()));
    this.ticker = new Ticker(this.clock, options.tickMs ?? 1000);
    this.ticker.add(this.pv);
    if (this.ev && this.evCharger && this.heatPump && this.lambda && this.hpMeter) {
      // Loads before the battery (its self-consumption follows them) and the meter (it sums them).
      this.ticker.add(this.ev);
      this.ticker.add(this.evCharger);
      this.ticker.add(this.heatPump);
      this.ticker.add(this.lambda);
      this.ticker.add(this.hpMeter);
      if (this.waterHeater && this.plug) {
        this.ticker.add(this.waterHeater);
        this.ticker.add(this.plug);
      }
    }
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
    if (this.hpMeter) this.serverB.addUnit(3, this.hpMeter.image);
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
    await this.startProfileServers(options, host, seed);
  }

  private async startProfileServers(options: SimulatedHomeOptions, host: string, seed: number): Promise<void> {
    const b = this.serverB!;
    if (this.hpMeter) {
      this.devices.push({ id: 'hp-meter', class: 'meter', profile: 'eastron-sdm120', modbus: { host, port: b.port, unitId: 3 } });
      this.where.set('hp-meter', { unitId: 3, set: (u, f) => b.setFault(u, f) });
    }
    if (this.evCharger) {
      const ev = new ModbusTcpServer({ host, port: options.ports?.ev ?? 0, seed: seed + 3 });
      this.serverEv = ev;
      // The controller answers whatever unit id it is asked with; evcc and the vendor use 255.
      ev.addUnit(PHOENIX_UNIT_ID, this.evCharger.image);
      await ev.start();
      this.devices.push({ id: 'ev', class: 'ev-charger', profile: 'phoenix-ev-cc', modbus: { host, port: ev.port, unitId: PHOENIX_UNIT_ID } });
      this.where.set('ev', { unitId: PHOENIX_UNIT_ID, set: (u, f) => ev.setFault(u, f) });
    }
    if (this.lambda) {
      const hp = new ModbusTcpServer({ host, port: options.ports?.heatPump ?? 0, seed: seed + 4 });
      this.serverHp = hp;
      hp.addUnit(1, this.lambda.image);
      await hp.start();
      this.devices.push({ id: 'heat-pump', class: 'hvac', profile: 'lambda-eu-l', modbus: { host, port: hp.port, unitId: 1 } });
      this.where.set('heat-pump', { unitId: 1, set: (u, f) => hp.setFault(u, f) });
    }
    const plug = this.plug;
    if (plug) {
      // On MQTT: it shows up once startMqttDevices connects it to a broker.
      this.devices.push({ id: 'water-heater', class: 'load', profile: 'shelly-plus-plug-s', mqtt: { topic: plug.prefix, stateTopic: plug.stateTopic, commandTopic: plug.commandTopic } });
    }
  }

  /** Connects the MQTT devices (the Shelly plug of the water heater) to a broker, e.g. the gateway's. */
  async startMqttDevices(url: string): Promise<void> {
    const plug = this.plug;
    if (!plug) throw new Error('the home has no MQTT devices (start it with flexibleLoads)');
    await plug.start(url);
  }

  /** Fault control of the MQTT plug: stale values, malformed JSON, a missing field. */
  mqttFaults(): { set(fault: MqttFault): void; clear(): void } {
    const plug = this.plug;
    if (!plug) throw new Error('the home has no MQTT devices');
    return { set: (f) => plug.setFault(f), clear: () => plug.setFault({ kind: 'none' }) };
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
    await this.plug?.stop();
    this.pv.stop();
    this.battery.stop();
    await this.serverA?.stop();
    await this.serverB?.stop();
    await this.serverEv?.stop();
    await this.serverHp?.stop();
    this.serverEv = this.serverHp = undefined;
    await this.rtu?.stop();
    await this.pty?.stop();
    this.serverA = this.serverB = this.rtu = undefined;
    this.pty = undefined;
    if (this.ownsClock) this.clock.stop();
  }
}
