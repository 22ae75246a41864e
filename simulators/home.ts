import { VirtualClock } from './clock.js';
import { AblEvCharger, ABL_UNIT_ID } from './devices/abl-ev.js';
import { HomeBattery } from './devices/battery.js';
import { EvCharging } from './devices/ev.js';
import { HeatPump } from './devices/heat-pump.js';
import { LambdaHeatPump, LAMBDA_UNIT_ID, type LambdaFirmware } from './devices/lambda-heat-pump.js';
import { SiteMeter } from './devices/meter.js';
import { PHOENIX_UNIT_ID, PhoenixEvCharger } from './devices/phoenix-ev.js';
import { PvInverter } from './devices/pv.js';
import { Sdm120 } from './devices/sdm120.js';
import { StiebelWpm, STIEBEL_UNIT_ID } from './devices/stiebel-wpm.js';
import { WaterHeater } from './devices/water-heater.js';
import { PtyPair } from './modbus/pty.js';
import { ModbusRtuServer } from './modbus/rtu-server.js';
import { ModbusTcpServer } from './modbus/tcp-server.js';
import type { Fault } from './modbus/units.js';
import { DEFAULT_SHELLY_PREFIX, ShellyPlug, type MqttFault } from './mqtt/shelly-plug.js';
import { Ticker } from './ticker.js';

export type HomeDeviceId = 'pv' | 'battery' | 'meter' | 'ev' | 'heat-pump' | 'hp-meter' | 'water-heater';

/** Where and what one simulated device is, as an installer would write it into flexgate's config. */
export interface HomeDevice {
  id: HomeDeviceId;
  class: 'pv' | 'battery' | 'meter' | 'ev-charger' | 'hvac' | 'load';
  /** The flexgate profile name for the device (non-SunSpec devices). */
  profile?: string;
  /** The vendor's device, for people. */
  model?: string;
  modbus?: { host: string; port: number; unitId: number };
  /** `path` is the side of the pty pair the agent opens. */
  rtu?: { path: string; baudRate: number; unitId: number; framing?: 'rtu' | 'ascii'; parity?: 'none' | 'even' };
  /** MQTT devices: the device's topic prefix and its topics; `url` once it is connected. */
  mqtt?: { topic: string; stateTopic: string; commandTopic: string; onlineTopic: string; url?: string };
}

export interface SimulatedHomeOptions {
  /** Default: a new VirtualClock at startTimeMs running at `speed`. */
  clock?: VirtualClock;
  /** Seeds clouds, household load, EV arrivals, outdoor temperature, hot water draws. Default 1. */
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
  /** TCP ports of server A (PV), gateway B (battery, meter, SDM120), the EV charger and the heat pump.
   * Default 0: free ports (the CLI uses 15020..15023). */
  ports?: { pv?: number; gateway?: number; ev?: number; heatPump?: number };
  /**
   * Add the flexible loads: an EV charger (Phoenix Contact on its own TCP server, unit 255, or ABL
   * with `evOnAbl`), a heat pump (Lambda or Stiebel Eltron on its own TCP server, unit 1) with an
   * Eastron SDM120 on its circuit (unit 3 of gateway B), and a water heater on a Shelly plug (MQTT).
   * Default false (the SunSpec-only home: PV, battery, meter), or true when `heatPump`, `evOnAbl` or
   * `mqtt` is given.
   */
  flexibleLoads?: boolean;
  /** An EV is plugged in at start. Default true (with `evEnergyWantedWh`). */
  evPluggedAtStart?: boolean;
  /** Energy the EV plugged in at start wants. Default 15 000 Wh; 0 = no EV at start. */
  evEnergyWantedWh?: number;
  /** Seeded daily EV arrivals (around 17:30, leaving around 07:00). Default true. */
  evArrivals?: boolean;
  /** The EV charger is an ABL eMH on a Modbus ASCII line (socat pty pair, unit 1, 8E1) instead of the
   * Phoenix Contact controller on TCP. Needs socat. */
  evOnAbl?: { baudRate: number };
  /** Heat pump front end. Default 'lambda'. */
  heatPump?: 'lambda' | 'stiebel';
  /** Lambda firmware (word order of the energy counter). Default '>=1.1.3'. */
  lambdaFirmware?: LambdaFirmware;
  /** Connect the Shelly plug of the water heater to this broker at start (else: startMqttDevices). */
  mqtt?: { url: string; prefix?: string };
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

/** A unit id on a server: where `faults(id)` acts. */
interface FaultTarget {
  unitId: number;
  set(unitId: number, fault: Fault): void;
}

/**
 * A home with a PV inverter (TCP server A, unit 1), a battery (TCP gateway B, unit 1) and a site meter
 * (gateway B unit 2, or unit 1 on an RTU line over a socat pty pair); with `flexibleLoads` also an EV
 * charger (Phoenix Contact on its own TCP server, unit 255; or ABL on an ASCII line), a heat pump
 * (Lambda or Stiebel Eltron on its own TCP server, unit 1), an Eastron SDM120 on the heat pump's
 * circuit (gateway B, unit 3: a TCP gateway in front of RS-485) and a water heater on a Shelly plug
 * (MQTT). One ticker on one virtual clock steps them in the order PV → EV → heat pump → SDM120 →
 * water heater → battery → site meter; the site meter sums them all (grid = base load + battery −
 * PV + EV + heat pump + water heater).
 */
export class SimulatedHome {
  readonly clock: VirtualClock;
  readonly pv: PvInverter;
  readonly battery: HomeBattery;
  readonly meter: SiteMeter;
  /** The EV charging session (physics); absent without flexible loads. */
  readonly ev: EvCharging | undefined;
  /** Its Phoenix Contact controller (the default) or ABL wallbox (`evOnAbl`). */
  readonly evCharger: PhoenixEvCharger | undefined;
  readonly abl: AblEvCharger | undefined;
  /** The heat pump (physics, 1R1C house) and its Lambda (default) or Stiebel Eltron front end. */
  readonly heatPump: HeatPump | undefined;
  readonly lambda: LambdaHeatPump | undefined;
  readonly stiebel: StiebelWpm | undefined;
  /** The Eastron SDM120 on the heat pump's circuit (unit 3 of gateway B). */
  readonly sdm120: Sdm120 | undefined;
  /** The water heater and the Shelly plug that switches it (on MQTT once connected). */
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
  private ablRtu: ModbusRtuServer | undefined;
  private ablPty: PtyPair | undefined;
  private readonly where = new Map<HomeDeviceId, FaultTarget>();

  private constructor(options: SimulatedHomeOptions) {
    this.ownsClock = options.clock === undefined;
    this.clock = options.clock ?? new VirtualClock({ startTimeMs: options.startTimeMs ?? todayNoonUtcMs(), speed: options.speed ?? 1 });
    const clock = this.clock;
    const seed = options.seed ?? 1;
    this.pv = new PvInverter({
      clock,
      seed,
      variant: options.variants?.pv ?? 'inverter',
      ratedPowerW: options.pvRatedPowerW ?? 8000,
      cloudiness: options.cloudiness ?? 0.3,
      // A few years of history: SunSpec reads an accumulator of 0 as "not implemented".
      initialEnergyWh: 21_400_000,
    });
    this.battery = new HomeBattery({
      clock,
      variant: options.variants?.battery ?? 'inverter',
      initialSocPct: options.batteryInitialSocPct ?? 50,
    });
    const meterOptions: ConstructorParameters<typeof SiteMeter>[0] = {
      clock,
      seed,
      variant: options.variants?.meter ?? 'wye',
      pv: this.pv,
      battery: this.battery,
      initialImportWh: 12_650_000,
      initialExportWh: 8_120_000,
    };
    if (options.baseLoadW !== undefined) meterOptions.baseLoadW = options.baseLoadW;
    this.meter = new SiteMeter(meterOptions);
    this.ticker = new Ticker(clock, options.tickMs ?? 1000);
    this.ticker.add(this.pv);

    const flexible = options.flexibleLoads ?? (options.heatPump !== undefined || options.evOnAbl !== undefined || options.mqtt !== undefined);
    if (flexible) {
      const ev = new EvCharging({ clock, seed, maxCurrentA: 16, phases: 3, arrivals: options.evArrivals ?? true });
      this.ev = ev;
      const wantedWh = options.evEnergyWantedWh ?? 15_000;
      if ((options.evPluggedAtStart ?? true) && wantedWh > 0) ev.plugIn({ energyWantedWh: wantedWh, socPct: 35 });
      this.ticker.add(ev);
      if (options.evOnAbl) {
        this.abl = new AblEvCharger(ev);
        this.ticker.add(this.abl);
      } else {
        this.evCharger = new PhoenixEvCharger(ev, { clock });
        this.ticker.add(this.evCharger);
      }
      this.meter.addLoad(() => ev.powerW);

      const hp = new HeatPump({ clock, seed, initialIndoorC: 21 });
      this.heatPump = hp;
      this.ticker.add(hp);
      if (options.heatPump === 'stiebel') {
        this.stiebel = new StiebelWpm(hp, { clock });
        this.ticker.add(this.stiebel);
      } else {
        this.lambda = new LambdaHeatPump(hp, { clock, ...(options.lambdaFirmware ? { firmware: options.lambdaFirmware } : {}) });
        this.ticker.add(this.lambda);
      }
      this.sdm120 = new Sdm120({ powerSource: () => hp.electricalPowerW, seed });
      this.ticker.add(this.sdm120);
      this.meter.addLoad(() => hp.electricalPowerW);

      const heater = new WaterHeater({ clock, seed });
      this.waterHeater = heater;
      this.plug = new ShellyPlug({ clock, load: heater, prefix: options.mqtt?.prefix ?? DEFAULT_SHELLY_PREFIX });
      this.ticker.add(heater);
      this.ticker.add(this.plug);
      this.meter.addLoad(() => heater.powerW);
    }
    // The battery's self-consumption follows the loads; the meter, stepped last, sums them all.
    this.battery.setSurplusSource(() => this.pv.acPowerW - this.meter.loadW(this.clock.now()));
    this.ticker.add(this.battery);
    this.ticker.add(this.meter);
  }

  /** The SDM120 on the heat pump circuit (old name). */
  get hpMeter(): Sdm120 | undefined {
    return this.sdm120;
  }

  /** Starts the physics and every server (and the MQTT plug with `mqtt`); rejects (after cleaning up) when one cannot start. */
  static async start(options: SimulatedHomeOptions = {}): Promise<SimulatedHome> {
    const home = new SimulatedHome(options);
    try {
      await home.startServers(options);
      if (options.mqtt && home.plug) await home.startMqttDevices(options.mqtt.url);
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
    if (this.sdm120) this.serverB.addUnit(3, this.sdm120.image);
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
    await this.startFlexibleLoadServers(options, host, seed);
  }

  private async startFlexibleLoadServers(options: SimulatedHomeOptions, host: string, seed: number): Promise<void> {
    const b = this.serverB!;
    if (this.sdm120) {
      this.devices.push({ id: 'hp-meter', class: 'meter', profile: 'eastron-sdm120', model: 'Eastron SDM120-Modbus', modbus: { host, port: b.port, unitId: 3 } });
      this.where.set('hp-meter', { unitId: 3, set: (u, f) => b.setFault(u, f) });
    }
    if (this.evCharger) {
      const ev = new ModbusTcpServer({ host, port: options.ports?.ev ?? 0, seed: seed + 3 });
      this.serverEv = ev;
      // The controller ignores the unit id it is asked with; evcc and the vendor use 255.
      ev.addUnit(PHOENIX_UNIT_ID, this.evCharger.image);
      await ev.start();
      this.devices.push({ id: 'ev', class: 'ev-charger', profile: 'phoenix-ev-cc', model: 'Phoenix Contact EV-CC-AC1-M3', modbus: { host, port: ev.port, unitId: PHOENIX_UNIT_ID } });
      this.where.set('ev', { unitId: PHOENIX_UNIT_ID, set: (u, f) => ev.setFault(u, f) });
    }
    if (this.abl && options.evOnAbl) {
      this.ablPty = await PtyPair.start();
      const baudRate = options.evOnAbl.baudRate;
      const line = new ModbusRtuServer({ path: this.ablPty.pathA, baudRate, framing: 'ascii', seed: seed + 5 });
      this.ablRtu = line;
      line.addUnit(ABL_UNIT_ID, this.abl.image);
      await line.start();
      this.devices.push({
        id: 'ev',
        class: 'ev-charger',
        profile: 'abl-emh',
        model: 'ABL eMH1',
        rtu: { path: this.ablPty.pathB, baudRate, unitId: ABL_UNIT_ID, framing: 'ascii', parity: 'even' },
      });
      this.where.set('ev', { unitId: ABL_UNIT_ID, set: (u, f) => line.setFault(u, f) });
    }
    const front = this.lambda ?? this.stiebel;
    if (front) {
      const hp = new ModbusTcpServer({ host, port: options.ports?.heatPump ?? 0, seed: seed + 4 });
      this.serverHp = hp;
      const unitId = this.lambda ? LAMBDA_UNIT_ID : STIEBEL_UNIT_ID;
      hp.addUnit(unitId, front.image);
      await hp.start();
      this.devices.push(
        this.lambda
          ? { id: 'heat-pump', class: 'hvac', profile: 'lambda-eu-l', model: 'Lambda EU-L', modbus: { host, port: hp.port, unitId } }
          : { id: 'heat-pump', class: 'hvac', profile: 'stiebel-wpm-sgready', model: 'Stiebel Eltron WPM with ISG', modbus: { host, port: hp.port, unitId } },
      );
      this.where.set('heat-pump', { unitId, set: (u, f) => hp.setFault(u, f) });
    }
    const plug = this.plug;
    if (plug) {
      // On MQTT: listed from the start, reachable once startMqttDevices (or the `mqtt` option) connects it.
      this.devices.push({
        id: 'water-heater',
        class: 'load',
        profile: 'shelly-plus-plug-s',
        model: 'Shelly Plus Plug S + 2 kW water heater',
        mqtt: { topic: plug.prefix, stateTopic: plug.stateTopic, commandTopic: plug.commandTopic, onlineTopic: plug.onlineTopic },
      });
    }
  }

  /** Connects the MQTT devices (the Shelly plug of the water heater) to a broker, e.g. the gateway's. */
  async startMqttDevices(url: string): Promise<void> {
    const plug = this.plug;
    if (!plug) throw new Error('the home has no MQTT devices (start it with flexibleLoads)');
    await plug.start(url);
    const d = this.devices.find((x) => x.id === 'water-heater');
    if (d?.mqtt) d.mqtt.url = url;
  }

  /** Fault control of an MQTT device (the water heater's plug): `stale`, `malformed-json`, `missing-field`. */
  mqttFaults(id: HomeDeviceId = 'water-heater'): { set(fault: MqttFault): void; clear(): void } {
    const plug = this.plug;
    if (!plug || id !== 'water-heater') throw new Error(`no MQTT device ${id}`);
    return { set: (f) => plug.setFault(f), clear: () => plug.setFault({ kind: 'none' }) };
  }

  device(id: HomeDeviceId): HomeDevice {
    const d = this.devices.find((x) => x.id === id);
    if (!d) throw new Error(`no device ${id}`);
    return d;
  }

  /** Fault control of one Modbus device: `home.faults('meter').set({ kind: 'no-answer' })`, `.clear()`. */
  faults(id: HomeDeviceId): { set(fault: Fault): void; clear(): void } {
    const w = this.where.get(id);
    if (!w) throw new Error(id === 'water-heater' ? 'the water heater is on MQTT: use mqttFaults()' : `no device ${id}`);
    return { set: (fault) => w.set(w.unitId, fault), clear: () => w.set(w.unitId, { kind: 'none' }) };
  }

  /** Stops the physics, disconnects the plug, closes every server and kills socat. Safe to call twice. */
  async stop(): Promise<void> {
    this.ticker.stop();
    await this.plug?.stop();
    this.pv.stop();
    this.battery.stop();
    this.lambda?.stop();
    for (const server of [this.serverA, this.serverB, this.serverEv, this.serverHp]) await server?.stop();
    this.serverA = this.serverB = this.serverEv = this.serverHp = undefined;
    for (const line of [this.rtu, this.ablRtu]) await line?.stop();
    this.rtu = this.ablRtu = undefined;
    for (const pty of [this.pty, this.ablPty]) await pty?.stop();
    this.pty = this.ablPty = undefined;
    if (this.ownsClock) this.clock.stop();
  }
}
