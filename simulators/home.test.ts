import { afterEach, describe, expect, it } from 'vitest';
import { VirtualClock } from './clock.js';
import { SimulatedHome } from './home.js';
import { socatAvailable } from './modbus/pty.js';
import { asciiClient, closeClient, failure, rtuClient, tcpClient, type Client } from './modbus/test-client.js';
import { Recorder, TestBroker } from './mqtt/test-broker.js';

const hasSocat = socatAvailable();
// Under CI a missing Debian package is a failure, not a skip (DESIGN.md: Real parts).
if (!hasSocat && process.env['CI'] === 'true') throw new Error('socat is not installed (apt-get install -y socat); CI must run the RTU tests');
const toInt16 = (r: number) => (r >= 0x8000 ? r - 0x10000 : r);
const lowWordFirst = (w: number[], at = 0) => w[at]! + w[at + 1]! * 0x10000;
function float32(words: number[]): number {
  const buf = Buffer.alloc(4);
  buf.writeUInt16BE(words[0]!, 0);
  buf.writeUInt16BE(words[1]!, 2);
  return buf.readFloatBE(0);
}

describe('SimulatedHome', () => {
  let home: SimulatedHome | undefined;
  const clients: Client[] = [];
  afterEach(async () => {
    for (const c of clients.splice(0)) await closeClient(c);
    await home?.stop();
    home = undefined;
  });

  it('serves PV on server A and battery + meter on gateway B; the agent reads the truth and curtails', async () => {
    const clock = new VirtualClock({ startTimeMs: Date.UTC(2026, 5, 21, 13), manual: true });
    home = await SimulatedHome.start({ clock, seed: 3, cloudiness: 0, baseLoadW: 500 });
    expect(home.devices.map((d) => [d.id, d.modbus?.unitId])).toEqual([
      ['pv', 1],
      ['battery', 1],
      ['meter', 2],
    ]);
    const pvAt = home.device('pv').modbus!;
    const meterAt = home.device('meter').modbus!;
    expect(meterAt.port).toBe(home.device('battery').modbus!.port);
    expect(pvAt.port).not.toBe(meterAt.port);
    clock.advance(1000);

    const pv = await tcpClient(pvAt.host, pvAt.port, 1);
    clients.push(pv);
    expect((await pv.readHoldingRegisters(40000, 4)).data).toEqual([0x5375, 0x6e53, 1, 66]);
    // 103 at 40070: W at +14, W_SF at +15 (0)
    expect((await pv.readHoldingRegisters(40084, 2)).data).toEqual([8000, 0]);
    expect(home.pv.acPowerW).toBe(8000);
    // 120 at 40122 (L 26), 123 at 40150: WMaxLimPct +5 (sf −1), _WinTms, _RvrtTms, _RmpTms, WMaxLim_Ena +9
    expect((await pv.readHoldingRegisters(40150, 2)).data).toEqual([123, 24]);
    await pv.writeRegisters(40155, [500, 0, 30, 0, 1]); // 50.0 %, revert after 30 s
    expect((await pv.readHoldingRegisters(40084, 1)).data).toEqual([4000]);

    // PV surplus 7500 W − load 500 → battery charges 5000 (its max); meter = 500 + 5000 − 8000 before the limit
    const gw = await tcpClient(meterAt.host, meterAt.port, 2);
    clients.push(gw);
    clock.advance(1000);
    expect(home.battery.powerW).toBe(3500); // 4000 − 500 after the limit
    expect(home.meter.powerW).toBe(500 + 3500 - 4000);
    // 203 at 40070: W at +18 → 40088
    expect((await gw.readHoldingRegisters(40070, 2)).data).toEqual([203, 105]);
    expect(toInt16((await gw.readHoldingRegisters(40088, 1)).data[0]!)).toBe(home.meter.powerW);
    gw.setID(1);
    // battery: 103 W at 40084 is AC output (−charge); 124 at 40122, ChaState at +8 with sf −1
    expect(toInt16((await gw.readHoldingRegisters(40084, 1)).data[0]!)).toBe(-3500);
    expect((await gw.readHoldingRegisters(40122, 2)).data).toEqual([124, 24]);
    expect((await gw.readHoldingRegisters(40130, 1)).data[0]! / 10).toBeCloseTo(home.battery.socPct, 1);

    clock.advance(29_000); // the limit's revert timer runs out
    expect((await pv.readHoldingRegisters(40084, 1)).data).toEqual([8000]);
    expect((await pv.readHoldingRegisters(40159, 1)).data).toEqual([0]);

    home.faults('meter').set({ kind: 'no-answer' });
    gw.setID(2);
    gw.setTimeout(100);
    expect((await failure(gw.readHoldingRegisters(40088, 1))).errno).toBe('ETIMEDOUT');
    gw.setID(1);
    expect((await gw.readHoldingRegisters(40002, 1)).data).toEqual([1]);
    home.faults('meter').clear();
    gw.setID(2);
    expect((await gw.readHoldingRegisters(40002, 1)).data).toEqual([1]);
  });

  it.skipIf(!hasSocat)('puts the meter on an RTU line over a pty pair when asked', async () => {
    const clock = new VirtualClock({ startTimeMs: Date.UTC(2026, 5, 21, 2), manual: true });
    home = await SimulatedHome.start({ clock, seed: 3, baseLoadW: 750, meterOnRtu: { baudRate: 38400 } });
    const at = home.device('meter').rtu!;
    expect(at.unitId).toBe(1);
    expect(home.device('meter').modbus).toBeUndefined();
    clock.advance(1000);
    const meter = await rtuClient(at.path, at.baudRate, at.unitId, 500);
    clients.push(meter);
    expect((await meter.readHoldingRegisters(40000, 2)).data).toEqual([0x5375, 0x6e53]);
    // Night: no PV, battery covers the load (self-consumption) → meter ≈ 0
    expect(home.battery.powerW).toBe(-750);
    expect(toInt16((await meter.readHoldingRegisters(40088, 1)).data[0]!)).toBe(0);
    home.faults('meter').set({ kind: 'exception', code: 4 });
    expect((await failure(meter.readHoldingRegisters(40088, 1))).modbusCode).toBe(4);
  });

  it('runs on its own clock at a speed factor', async () => {
    home = await SimulatedHome.start({ speed: 1000, startTimeMs: Date.UTC(2026, 5, 21, 13), cloudiness: 0, baseLoadW: 400 });
    const t0 = home.clock.now();
    await new Promise((r) => setTimeout(r, 30));
    expect(home.clock.now() - t0).toBeGreaterThanOrEqual(25_000);
    expect(home.meter.importWh + home.meter.exportWh).toBeGreaterThan(0);
  });

  it('flexible loads: EV charger, heat pump, SDM120 and water heater, each where the vendor puts it; the site meter sums them', async () => {
    const clock = new VirtualClock({ startTimeMs: Date.UTC(2026, 0, 14, 12), manual: true });
    home = await SimulatedHome.start({ clock, seed: 4, baseLoadW: 400, flexibleLoads: true });
    expect(home.devices.map((d) => [d.id, d.class, d.profile, d.modbus?.unitId ?? d.mqtt?.topic])).toEqual([
      ['pv', 'pv', undefined, 1],
      ['battery', 'battery', undefined, 1],
      ['meter', 'meter', undefined, 2],
      ['hp-meter', 'meter', 'eastron-sdm120', 3],
      ['ev', 'ev-charger', 'phoenix-ev-cc', 255],
      ['heat-pump', 'hvac', 'lambda-eu-l', 1],
      ['water-heater', 'load', 'shelly-plus-plug-s', 'shellyplusplugs-d4d4daecf1a0'],
    ]);
    const gateway = home.device('battery').modbus!;
    expect(home.device('hp-meter').modbus!.port).toBe(gateway.port);
    const evAt = home.device('ev').modbus!;
    const hpAt = home.device('heat-pump').modbus!;
    expect(new Set([gateway.port, evAt.port, hpAt.port, home.device('pv').modbus!.port]).size).toBe(4);
    expect(home.device('water-heater').mqtt).toEqual({
      topic: 'shellyplusplugs-d4d4daecf1a0',
      stateTopic: 'shellyplusplugs-d4d4daecf1a0/status/switch:0',
      commandTopic: 'shellyplusplugs-d4d4daecf1a0/command/switch:0',
      onlineTopic: 'shellyplusplugs-d4d4daecf1a0/online',
    });
    clock.advance(1000);
    // Interesting at noon: the EV (plugged at start, 15 kWh wanted) charges, the heat pump runs (cold),
    // the water heater heats.
    const ev = home.ev!;
    const hp = home.heatPump!;
    const heater = home.waterHeater!;
    expect(ev.powerW).toBe(11_040);
    expect(ev.vehicle!.energyWantedWh).toBe(15_000);
    expect(hp.electricalPowerW).toBeGreaterThan(300);
    expect(heater.powerW).toBe(2000);
    const grid = () => home!.meter.baseLoadW + home!.battery.powerW - home!.pv.acPowerW + ev.powerW + hp.electricalPowerW + heater.powerW;
    expect(home.meter.powerW).toBe(Math.round(grid()));

    const evClient = await tcpClient(evAt.host, evAt.port, evAt.unitId);
    clients.push(evClient);
    expect((await evClient.readInputRegisters(100, 1)).data).toEqual([67]); // 'C'
    expect(lowWordFirst((await evClient.readInputRegisters(120, 2)).data)).toBe(11_040);
    await evClient.writeRegister(528, 6);
    expect(ev.powerW).toBe(3 * 230 * 6);
    const hpClient = await tcpClient(hpAt.host, hpAt.port, hpAt.unitId);
    clients.push(hpClient);
    expect(toInt16((await hpClient.readHoldingRegisters(103, 1)).data[0]!)).toBe(hp.electricalPowerW);
    await hpClient.writeRegisters(5050, [(-30) & 0xffff]);
    expect(hp.flowOffsetC).toBe(-3);
    const sub = await tcpClient(gateway.host, gateway.port, 3);
    clients.push(sub);
    clock.advance(1000);
    expect(float32((await sub.readInputRegisters(0x0c, 2)).data)).toBe(hp.electricalPowerW);
    expect(home.meter.powerW).toBe(Math.round(grid()));

    // Faults per Modbus device; the MQTT plug has its own.
    home.faults('ev').set({ kind: 'exception', code: 4 });
    home.faults('heat-pump').set({ kind: 'exception', code: 6 });
    home.faults('hp-meter').set({ kind: 'exception', code: 5 });
    expect((await failure(evClient.readInputRegisters(100, 1))).modbusCode).toBe(4);
    expect((await failure(hpClient.readHoldingRegisters(103, 1))).modbusCode).toBe(6);
    expect((await failure(sub.readInputRegisters(0x0c, 2))).modbusCode).toBe(5);
    for (const id of ['ev', 'heat-pump', 'hp-meter'] as const) home.faults(id).clear();
    expect((await evClient.readInputRegisters(100, 1)).data).toEqual([67]);
    expect(() => home!.faults('water-heater')).toThrow(/mqttFaults/);
    home.mqttFaults().set({ kind: 'stale' });
    expect(home.plug!.fault).toEqual({ kind: 'stale' });
    home.mqttFaults().clear();

    // The simulator's own energy account: the site meter's import and export follow the grid power.
    const import0 = home.meter.importWh;
    const export0 = home.meter.exportWh;
    let gridWh = 0;
    for (let s = 0; s < 600; s++) {
      gridWh += home.meter.powerW / 3600;
      clock.advance(1000);
    }
    expect(home.meter.importWh - import0 - (home.meter.exportWh - export0)).toBeCloseTo(gridWh, 6);
    await home.stop();
    home = undefined;
    expect(clock.pendingTimers).toBe(0);
  });

  it('heatPump: stiebel puts a Stiebel Eltron WPM on the heat pump server; evPluggedAtStart: false leaves the EV away', async () => {
    const clock = new VirtualClock({ startTimeMs: Date.UTC(2026, 0, 14, 12), manual: true });
    home = await SimulatedHome.start({ clock, seed: 4, heatPump: 'stiebel', evPluggedAtStart: false });
    expect(home.lambda).toBeUndefined();
    expect(home.device('heat-pump').profile).toBe('stiebel-wpm-sgready');
    expect(home.ev!.plugged).toBe(false);
    clock.advance(1000);
    const at = home.device('heat-pump').modbus!;
    const c = await tcpClient(at.host, at.port, at.unitId);
    clients.push(c);
    expect((await c.readInputRegisters(5000, 1)).data).toEqual([2]);
    await c.writeRegister(4002, 1);
    expect(home.heatPump!.electricalPowerW).toBe(0);
    expect(home.stiebel!.sgReadyState).toBe(1);
    const ev = home.device('ev').modbus!;
    const e = await tcpClient(ev.host, ev.port, ev.unitId);
    clients.push(e);
    expect((await e.readInputRegisters(100, 1)).data).toEqual([65]); // 'A'
  });

  it('mqtt: the water heater’s Shelly plug connects to the broker it is given', async () => {
    const broker = new TestBroker();
    await broker.start();
    const clock = new VirtualClock({ startTimeMs: Date.UTC(2026, 0, 14, 12), manual: true });
    const recorder = await Recorder.connect(broker.url, ['shellyplusplugs-d4d4daecf1a0/#']);
    try {
      home = await SimulatedHome.start({ clock, seed: 4, mqtt: { url: broker.url } });
      expect(home.ev).toBeDefined(); // the mqtt option brings the flexible loads
      const d = home.device('water-heater').mqtt!;
      expect(d.url).toBe(broker.url);
      await recorder.next((m) => m.topic === d.onlineTopic && m.payload === 'true');
      const status = JSON.parse((await recorder.next((m) => m.topic === d.stateTopic)).payload) as { output: boolean; apower: number };
      expect(status).toMatchObject({ output: true, apower: home.waterHeater!.powerW });
      const from = recorder.messages.length;
      await recorder.publish(d.commandTopic, 'off');
      await recorder.next((m) => m.topic === d.stateTopic && (JSON.parse(m.payload) as { output: boolean }).output === false, from);
      expect(home.waterHeater!.powerW).toBe(0);
      clock.advance(1000);
      expect(home.meter.powerW).toBe(
        Math.round(home.meter.baseLoadW + home.battery.powerW - home.pv.acPowerW + home.ev!.powerW + home.heatPump!.electricalPowerW),
      );
      await home.stop();
      home = undefined;
      await recorder.next((m) => m.topic === d.onlineTopic && m.payload === 'false', from);
    } finally {
      await recorder.close();
      await broker.stop();
    }
  });

  it.skipIf(!hasSocat)('evOnAbl puts an ABL wallbox on a Modbus ASCII line instead of the Phoenix controller', async () => {
    const clock = new VirtualClock({ startTimeMs: Date.UTC(2026, 0, 14, 12), manual: true });
    home = await SimulatedHome.start({ clock, seed: 4, flexibleLoads: true, evOnAbl: { baudRate: 38400 } });
    expect(home.evCharger).toBeUndefined();
    const d = home.device('ev');
    expect(d.modbus).toBeUndefined();
    expect(d.rtu).toMatchObject({ baudRate: 38400, unitId: 1, framing: 'ascii', parity: 'even' });
    clock.advance(1000);
    const c = await asciiClient(d.rtu!.path, 38400, 1, 500);
    clients.push(c);
    expect((await c.readHoldingRegisters(0x0004, 1)).data[0]! >> 8).toBe(0xc2);
    await c.writeRegisters(0x0014, [1000]);
    expect(home.ev!.powerW).toBe(0);
    home.faults('ev').set({ kind: 'no-answer' });
    c.setTimeout(100);
    expect((await failure(c.readHoldingRegisters(0x0004, 1))).errno).toBe('ETIMEDOUT');
  });
});

