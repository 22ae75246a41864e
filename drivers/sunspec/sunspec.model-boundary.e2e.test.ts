/**
 * End to end: a SunSpec device that refuses any read spanning two of its models (exception 2, illegal
 * data address) — as some real devices do at model boundaries. The poll plans one range per model and
 * lets the transport merge them across the models in between (drivers/sunspec/README.md); the
 * transport (drivers/modbus `readRanges`) splits the rejected merged read within the same poll,
 * remembers the split, and the next poll reads model by model from the start. Served by the
 * simulators' real Modbus TCP server, read through the real bus.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Pv } from '../classes.js';
import { systemClock } from '../clock.js';
import { silentLog } from '../log.js';
import { createModbusBus } from '../modbus/bus.js';
import type { ModbusBus } from '../modbus/types.js';
import { VirtualClock } from '../../simulators/clock.js';
import { PvInverter } from '../../simulators/devices/pv.js';
import { RegisterImage, type RegisterWrite } from '../../simulators/modbus/image.js';
import { ModbusTcpServer } from '../../simulators/modbus/tcp-server.js';
import type { SunSpecDevice } from '../../simulators/sunspec/encoder.js';
import { createSunSpecDevice } from './device.js';

/**
 * A simulated device's register image behind a stricter front: a read that spans a model boundary
 * (the ID register of a model, or the end marker) is refused with exception 2. Records every read
 * the device is asked for, and whether it was answered.
 */
class ModelBoundaryImage extends RegisterImage {
  readonly reads: { address: number; count: number; ok: boolean }[] = [];
  private readonly boundaries: number[];

  constructor(
    private readonly inner: RegisterImage,
    device: SunSpecDevice,
  ) {
    super();
    const { baseAddress, totalRegisters, models } = device.layout;
    this.boundaries = [...models.map((m) => m.address), baseAddress + totalRegisters - 2];
  }

  /** Asked by the server before every FC3/FC4 read. */
  override isDefined(address: number, count = 1): boolean {
    const spans = this.boundaries.some((b) => address < b && b < address + count);
    const ok = !spans && this.inner.isDefined(address, count);
    this.reads.push({ address, count, ok });
    return ok;
  }

  override read(address: number, count: number): number[] {
    return this.inner.read(address, count);
  }

  override isWritable(address: number, count = 1): boolean {
    return this.inner.isWritable(address, count);
  }

  override writeFromBus(address: number, values: RegisterWrite['values']): number | undefined {
    return this.inner.writeFromBus(address, values);
  }
}

const clock = new VirtualClock({ startTimeMs: Date.UTC(2026, 5, 21, 12), manual: true });
const server = new ModbusTcpServer({ seed: 3 });
const buses: ModbusBus[] = [];

/** Unit ids: the strict device and the same simulated device answering every read, per variant. */
const variants = {
  inverter: { strict: 1, plain: 2, pv: new PvInverter({ clock, variant: 'inverter', cloudiness: 0, initialEnergyWh: 5_000_000 }) },
  der: { strict: 3, plain: 4, pv: new PvInverter({ clock, variant: 'der', cloudiness: 0, initialEnergyWh: 7_000_000 }) },
};
const strictImages = new Map<number, ModelBoundaryImage>();

beforeAll(async () => {
  for (const v of Object.values(variants)) {
    const strict = new ModelBoundaryImage(v.pv.sunspec.image, v.pv.sunspec);
    strictImages.set(v.strict, strict);
    server.addUnit(v.strict, strict);
    server.addUnit(v.plain, v.pv.sunspec.image);
  }
  await server.start();
});

afterAll(async () => {
  await server.stop();
});

afterEach(async () => {
  await Promise.all(buses.splice(0).map((b) => b.stop()));
});

async function newBus(): Promise<ModbusBus> {
  const bus = createModbusBus({ connection: { tcp: { host: server.host, port: server.port } }, clock: systemClock, log: silentLog, timeoutMs: 1000 });
  buses.push(bus);
  await bus.start();
  return bus;
}

/** What one poll costs on the bus, and what the device was asked. */
async function poll(pv: Pv, bus: ModbusBus, image?: ModelBoundaryImage) {
  const before = { ...bus.stats };
  image?.reads.splice(0);
  const reading = await pv.read();
  return {
    reading,
    transactions: bus.stats.transactions - before.transactions,
    exceptions: bus.stats.exceptions - before.exceptions,
    reads: image?.reads.map((r) => `${r.address}+${r.count}${r.ok ? '' : ' rejected'}`),
  };
}

describe('SunSpec over Modbus TCP: a device that rejects reads spanning two models', () => {
  // inverter: 103 at 40070, 120 at 40122, 123 at 40150; the poll reads 103..WH_SF, 120..WRtg_SF,
  //           123..WMaxLimPct_SF, one read 40070+104 on a device that allows it.
  // der:      701 at 40070, 702 at 40225, 704 at 40277; 701..TotWh_SF alone (702 lies beyond one
  //           125-register read), then 702 and 704 in one read 40225+107 on a device that allows it.
  const expected = {
    inverter: {
      plain: ['40070+104'],
      // 40070+104 rejected: the middle join (123 at 40150) is forbidden; 40150+24 is answered,
      // 40070+57 (103 and 120) is rejected again, so 120's join is forbidden too.
      first: ['40070+104 rejected', '40070+57 rejected', '40150+24', '40070+27', '40122+5'],
      next: ['40070+27', '40122+5', '40150+24'],
    },
    der: {
      plain: ['40070+121', '40225+107'],
      first: ['40070+121', '40225+107 rejected', '40225+46', '40277+55'],
      next: ['40070+121', '40225+46', '40277+55'],
    },
  } as const;

  for (const name of ['inverter', 'der'] as const) {
    it(`${name} models: the first poll splits and retries within the read, the next uses the split plan, values are the device's`, async () => {
      const v = variants[name];
      const image = strictImages.get(v.strict)!;
      const bus = await newBus();

      // The same simulated device without the restriction: the merged plan.
      const plainPv: Pv = await createSunSpecDevice({ id: 'pv-plain', deviceClass: 'pv', unit: bus.unit(v.plain), log: silentLog });
      const plain = await poll(plainPv, bus);
      expect(plain.transactions).toBe(expected[name].plain.length);
      expect(plain.exceptions).toBe(0);

      // Discovery and the identity read stay inside one model each: nothing is rejected.
      const pv: Pv = await createSunSpecDevice({ id: 'pv', deviceClass: 'pv', unit: bus.unit(v.strict), log: silentLog });
      expect(image.reads.filter((r) => !r.ok)).toEqual([]);
      expect(pv.describe()).toMatch(/^SunSpec flexgate-sim /);

      // First poll: succeeds although the merged reads are refused.
      const first = await poll(pv, bus, image);
      expect(first.reads).toEqual(expected[name].first);
      expect(first.transactions).toBe(expected[name].first.length);
      expect(first.exceptions).toBe(expected[name].first.filter((r) => r.endsWith('rejected')).length);
      expect(first.reading).toEqual({ powerW: v.pv.acPowerW, energyWh: Math.floor(v.pv.energyWh), ratedPowerW: 8000 });
      expect(first.reading.powerW).toBeGreaterThan(1000);
      expect(first.reading).toEqual(plain.reading);

      // The device moves on; the next poll reads model by model from the start, no exception.
      clock.advance(60_000);
      v.pv.step(clock.now(), 60_000);
      const next = await poll(pv, bus, image);
      expect(next.reads).toEqual(expected[name].next);
      expect(next.transactions).toBe(3);
      expect(next.exceptions).toBe(0);
      expect(next.reading).toEqual({ powerW: v.pv.acPowerW, energyWh: Math.floor(v.pv.energyWh), ratedPowerW: 8000 });
      expect(next.reading.energyWh).toBeGreaterThan(first.reading.energyWh!);

      // Control goes through, and the limit reads back through the split plan.
      await pv.setLimitPct(40, 60_000);
      v.pv.step(clock.now(), 0);
      expect(v.pv.limitPct).toBe(40);
      const limited = await poll(pv, bus, image);
      expect(limited.reading.limitPct).toBe(40);
      expect(limited.reading.powerW).toBe(v.pv.acPowerW);
      expect(limited.reads).toEqual(expected[name].next);
      await pv.clearLimit();
      v.pv.step(clock.now(), 0);
      expect(v.pv.limitPct).toBeUndefined();

      // The unrestricted unit on the same bus keeps its merged plan.
      expect((await poll(plainPv, bus)).transactions).toBe(expected[name].plain.length);
    });
  }
});
