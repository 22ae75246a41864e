/**
 * Every fault kind of the simulators against the running agent: the agent stays up, the faulty
 * device goes offline with a reason that says what is wrong, healthy devices on the same bus keep
 * their poll schedule, and the device is online again within two poll cycles once the fault clears.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../agent/agent.js';
import type { AvailabilityChange } from '../agent/device-handle.js';
import type { SiteSnapshot } from '../agent/snapshot.js';
import { silentLog } from '../drivers/log.js';
import type { SimulatedHome } from '../simulators/home.js';
import type { Fault } from '../simulators/modbus/units.js';
import { homeConfig, requirePackage, startFrozenHome, tempDir, waitFor } from './helpers.js';

const POLL_MS = 250;
const TIMEOUT_MS = 200;
/** A failing device is probed at most this far apart (two poll cycles). */
const RETRY_MS = 2 * POLL_MS;

let home: SimulatedHome;
let agent: Agent;
let dir: ReturnType<typeof tempDir>;
const snapshots: SiteSnapshot[] = [];
const changes: AvailabilityChange[] = [];

beforeAll(async () => {
  home = await startFrozenHome();
  dir = tempDir();
  agent = new Agent({ config: homeConfig(home, dir.path, { device: { pollIntervalMs: POLL_MS, timeoutMs: TIMEOUT_MS, offlineRetryMaxMs: RETRY_MS } }), log: silentLog });
  agent.events.on('snapshot', (s) => void snapshots.push(s));
  agent.events.on('availability', (c) => void changes.push(c));
  await agent.start();
  await waitFor('all devices online', () => snapshots.at(-1)?.devices.every((d) => d.availability.state === 'online'));
});

afterAll(async () => {
  await agent?.stop();
  await home?.stop();
  dir?.remove();
});

/** Times of the good reads of a device in [fromMs, toMs]. */
function goodReadTimes(id: string, fromMs: number, toMs: number): number[] {
  const times = new Set<number>();
  for (const s of snapshots) {
    const d = s.devices.find((x) => x.id === id)!;
    if (d.fresh && d.readAtMs !== undefined && d.readAtMs >= fromMs && d.readAtMs <= toMs) times.add(d.readAtMs);
  }
  return [...times].sort((a, b) => a - b);
}

const cases: Array<{ name: string; device: 'pv' | 'battery'; neighbour?: 'meter'; fault: Fault; reason: RegExp }> = [
  { name: 'no answer', device: 'battery', neighbour: 'meter', fault: { kind: 'no-answer' }, reason: /timeout|no answer|timed out/i },
  { name: 'slow answer (beyond the timeout)', device: 'battery', neighbour: 'meter', fault: { kind: 'slow', delayMs: 2 * TIMEOUT_MS }, reason: /timeout|no answer|timed out/i },
  { name: 'Modbus exception', device: 'battery', neighbour: 'meter', fault: { kind: 'exception', code: 4 }, reason: /exception 4|server device failure/i },
  { name: 'garbage frame', device: 'battery', neighbour: 'meter', fault: { kind: 'garbage', variant: 'random' }, reason: /bad|garbage|length|unexpected|timeout|no answer|connect/i },
  { name: 'dropped connection', device: 'pv', fault: { kind: 'drop-connection' }, reason: /connect|closed|reset/i },
];

describe('faults of a device while the agent runs', () => {
  for (const c of cases) {
    it(`${c.name}: offline with its reason, neighbours unaffected, back within two poll cycles`, async () => {
      await waitFor('all devices online before the fault', () => snapshots.at(-1)?.devices.every((d) => d.availability.state === 'online'));
      const faultAtMs = Date.now();
      home.faults(c.device).set(c.fault);
      try {
      const offline = await waitFor(`${c.device} offline`, () =>
        changes.find((x) => x.deviceId === c.device && x.tsMs >= faultAtMs && x.availability.state === 'offline'),
      );
      const reason = offline.availability.state === "offline" ? offline.availability.reason : "";
      if (!c.reason.test(reason)) throw new Error(`reason does not say what is wrong: ${reason}`);
      // Keep the fault for a while: the agent must keep running and keep reading the others.
      await new Promise((r) => setTimeout(r, 1500));
      const faultEndMs = Date.now();
      for (const other of ['pv', 'battery', 'meter'].filter((id) => id !== c.device)) {
        const times = goodReadTimes(other, faultAtMs, faultEndMs);
        // A healthy device keeps its schedule: between two of its reads at most one timeout of the
        // faulty neighbour, and (when that pushes its read past a cycle start) one more poll cycle.
        const gaps = times.slice(1).map((t, i) => t - times[i]!);
        expect(times.length, `${other} reads during the fault`).toBeGreaterThanOrEqual(Math.floor((faultEndMs - faultAtMs) / (2 * POLL_MS + TIMEOUT_MS)));
        expect(Math.max(...gaps), `${other} largest gap between reads`).toBeLessThanOrEqual(2 * POLL_MS + TIMEOUT_MS + 100);
      }
      expect(snapshots.at(-1)!.devices.find((d) => d.id === c.device)!.availability.state).toBe('offline');
      } finally {
        home.faults(c.device).clear();
      }
      const clearedAtMs = Date.now();
      const back = await waitFor(`${c.device} online again`, () =>
        changes.find((x) => x.deviceId === c.device && x.tsMs >= clearedAtMs && x.availability.state === 'online'),
      );
      // At its next probe: the retry period (two poll cycles here), plus the request that may still
      // be on the wire when the fault clears, plus the cycle its read lands in.
      expect(back.tsMs - clearedAtMs).toBeLessThanOrEqual(RETRY_MS + TIMEOUT_MS + 2 * POLL_MS);
    });
  }

  it('never made up a value: every reading taken during faults equals the simulator state', () => {
    for (const s of snapshots) {
      const pv = s.devices.find((d) => d.id === 'pv')!;
      if (pv.fresh) expect(pv.reading!.powerW).toBe(Math.round(home.pv.acPowerW));
      const meter = s.devices.find((d) => d.id === 'meter')!;
      if (meter.fresh) expect(meter.reading!.powerW).toBe(Math.round(home.meter.powerW));
    }
  });
});

describe('faults of a device on an RS-485 line', () => {
  it('no answer, bad CRC, slow answer and exceptions: offline with the reason, then back', async () => {
    if (!requirePackage('socat', 'socat')) return;
    const rtuHome = await startFrozenHome({ meterOnRtu: { baudRate: 19200 } });
    const rtuDir = tempDir();
    const rtuChanges: AvailabilityChange[] = [];
    const rtuAgent = new Agent({ config: homeConfig(rtuHome, rtuDir.path, { device: { pollIntervalMs: 300, timeoutMs: 250, offlineRetryMaxMs: 600 } }), log: silentLog });
    rtuAgent.events.on('availability', (c) => void rtuChanges.push(c));
    try {
      await rtuAgent.start();
      await waitFor('meter online', () => rtuChanges.find((c) => c.deviceId === 'meter' && c.availability.state === 'online'));
      const rtuCases: Array<{ fault: Fault; reason: RegExp }> = [
        { fault: { kind: 'no-answer' }, reason: /timeout|no answer|timed out/i },
        { fault: { kind: 'garbage', variant: 'bad-crc' }, reason: /CRC|bad answer|timeout|no answer/i },
        { fault: { kind: 'slow', delayMs: 600 }, reason: /timeout|no answer|timed out/i },
        { fault: { kind: 'exception', code: 6 }, reason: /exception 6|busy/i },
      ];
      for (const c of rtuCases) {
        const atMs = Date.now();
        rtuHome.faults('meter').set(c.fault);
        try {
          const off = await waitFor(`meter offline (${c.fault.kind})`, () => rtuChanges.find((x) => x.deviceId === 'meter' && x.tsMs >= atMs && x.availability.state === 'offline'));
          const reason = off.availability.state === 'offline' ? off.availability.reason : '';
          if (!c.reason.test(reason)) throw new Error(`reason does not say what is wrong: ${reason}`);
        } finally {
          rtuHome.faults('meter').clear();
        }
        const clearedMs = Date.now();
        const back = await waitFor(`meter back (${c.fault.kind})`, () => rtuChanges.find((x) => x.deviceId === 'meter' && x.tsMs >= clearedMs && x.availability.state === 'online'));
        expect(back.tsMs - clearedMs).toBeLessThanOrEqual(600 + 600 + 300 + 300);
      }
    } finally {
      await rtuAgent.stop();
      await rtuHome.stop();
      rtuDir.remove();
    }
  }, 60_000);
});
