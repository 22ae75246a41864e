/**
 * Interop: the transport on a real Mosquitto (Debian package `mosquitto`), as on a gateway that runs
 * its own broker: one read through JSON paths and one confirmed command, with the device's retained
 * availability. Skips with a message when Mosquitto is not installed; under CI=true that is a failure.
 */
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { mqttSectionSchema } from './profile-schema.js';
import { ManualClock, recordingLog, requireMosquitto, startMosquitto, until } from './test-support.js';
import { createMqttProfileTransport } from './transport.js';

const BASE = 'shellyplusplugs-mosq01';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

describe('MQTT devices on Mosquitto', () => {
  it('reads a device and runs a confirmed command', async () => {
    if (!requireMosquitto()) return;
    const broker = await startMosquitto();
    cleanups.push(() => broker.close());

    // The device: retained availability with a last will, a status topic, a command topic it answers.
    let output = true;
    const device = await mqtt.connectAsync(broker.url, { will: { topic: `${BASE}/online`, payload: Buffer.from('false'), qos: 1, retain: true } });
    cleanups.push(() => device.endAsync(true));
    const status = () => JSON.stringify({ id: 0, output, apower: output ? 1998.3 : 0, aenergy: { total: 123456.789 }, temperature: { tC: 41.2 } });
    const commands: string[] = [];
    device.on('message', (_topic, payload) => {
      const text = payload.toString();
      commands.push(text);
      if (text === 'on' || text === 'off') output = text === 'on';
      void device.publishAsync(`${BASE}/status/switch:0`, status(), { qos: 1 });
    });
    await device.subscribeAsync(`${BASE}/command/switch:0`, { qos: 1 });
    await device.publishAsync(`${BASE}/online`, 'true', { qos: 1, retain: true });

    const section = mqttSectionSchema.parse({
      staleAfterMs: 90_000,
      availability: { topic: '{topic}/online', online: 'true', offline: 'false' },
      sources: {
        output: { topic: '{topic}/status/switch:0', path: 'output', type: 'boolean' },
        power: { topic: '{topic}/status/switch:0', path: 'apower', type: 'number' },
        energy: { topic: '{topic}/status/switch:0', path: 'aenergy.total', type: 'number' },
      },
      actions: { switch: { topic: '{topic}/command/switch:0', payload: '{value}', confirm: { source: 'output', values: { on: true, off: false }, timeoutMs: 5000 } } },
      refresh: { topic: '{topic}/command/switch:0', payload: 'status_update', everyMs: 30_000 },
    });
    const transport = createMqttProfileTransport({ section, topic: BASE, url: broker.url, clock: new ManualClock(), log: recordingLog() });
    cleanups.push(() => transport.stop());
    await transport.start();

    // The read: the answer to the refresh sent on connecting.
    const snap = await until('a read', () => transport.read().catch(() => undefined));
    expect(snap.values).toEqual({ output: true, power: 1998.3, energy: 123456.789 });
    expect(commands).toEqual(['status_update']);

    // The command, confirmed by the device's next status.
    await transport.act('switch', 'off');
    expect(commands).toEqual(['status_update', 'off']);
    expect((await transport.read()).values).toEqual({ output: false, power: 0, energy: 123456.789 });
  });
});
