import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLog } from '../drivers/log.js';
import { waitFor } from '../test/helpers.js';
import { startEmbeddedBroker } from './embedded-broker.js';
import { Uplink, UplinkDownError } from './uplink.js';

const GATEWAY = '0x1563915E194D8CfBA1943570603F7606A3115508';
const ORDER_TOPIC = '/order';

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Publishes probes on the order topic until the uplink's subscription delivers one. */
async function untilSubscribed(aggregator: mqtt.MqttClient, uplink: Uplink, received: { length: number }): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (received.length === 0) {
    if (Date.now() > deadline) throw new Error('the order subscription never delivered');
    await aggregator.publishAsync(uplink.orderTopic, 'probe', { qos: 1 });
    await new Promise((r) => setTimeout(r, 20));
  }
}

function uplinkOn(url: string): Uplink {
  const uplink = new Uplink({ url, gateway: GATEWAY, version: '1.2.3', log: silentLog, now: () => Date.now() });
  cleanups.push(() => uplink.stop());
  return uplink;
}

describe('uplink: orders and statuses', () => {
  it('subscribes to flex/v1/gw/{gateway}/order (lowercase) at QoS 1 and hands each payload over as raw bytes', async () => {
    const broker = await startEmbeddedBroker();
    cleanups.push(() => broker.close());
    const uplink = uplinkOn(broker.url);
    expect(uplink.orderTopic).toBe(`flex/v1/gw/${GATEWAY.toLowerCase()}${ORDER_TOPIC}`);
    const received: Uint8Array[] = [];
    uplink.onOrder((raw) => received.push(raw));
    uplink.start();
    await uplink.waitConnected();
    const aggregator = await mqtt.connectAsync(broker.url);
    cleanups.push(() => aggregator.endAsync(true));
    // the subscription is made on connect: wait until a probe arrives
    const bytes = Buffer.from([0x7b, 0xff, 0x00, 0x7d]);
    await untilSubscribed(aggregator, uplink, received);
    received.length = 0;
    await aggregator.publishAsync(uplink.orderTopic, bytes, { qos: 1 });
    await aggregator.publishAsync(`flex/v1/gw/${GATEWAY.toLowerCase()}/other`, 'x', { qos: 1 });
    await waitFor('order delivered', () => received.length === 1);
    expect(Buffer.from(received[0]!)).toEqual(bytes);
  });

  it('orders sent while the gateway was offline are delivered when it comes back (persistent session, QoS 1)', async () => {
    const broker = await startEmbeddedBroker();
    cleanups.push(() => broker.close());
    const first = uplinkOn(broker.url);
    const probes: Uint8Array[] = [];
    first.onOrder((raw) => probes.push(raw));
    first.start();
    await first.waitConnected();
    const aggregator = await mqtt.connectAsync(broker.url);
    cleanups.push(() => aggregator.endAsync(true));
    await untilSubscribed(aggregator, first, probes);
    await first.stop();

    for (let i = 0; i < 3; i++) await aggregator.publishAsync(first.orderTopic, `order ${i}`, { qos: 1 });

    const second = uplinkOn(broker.url);
    const received: string[] = [];
    // (a late probe of the first connection may come too: it is not an order of this test)
    second.onOrder((raw) => received.push(Buffer.from(raw).toString()));
    second.start();
    await waitFor('queued orders delivered', () => received.filter((r) => r !== 'probe').length === 3);
    expect(received.filter((r) => r !== 'probe')).toEqual(['order 0', 'order 1', 'order 2']);
  });

  it('publishConfirmed resolves after the PUBACK; the status transport publishes on /ack and reports reconnects', async () => {
    const broker = await startEmbeddedBroker();
    cleanups.push(() => broker.close());
    const uplink = uplinkOn(broker.url);
    await expect(uplink.publishConfirmed('ack', 'x')).rejects.toBeInstanceOf(UplinkDownError);
    const transport = uplink.statusTransport();
    let connects = 0;
    transport.onConnect(() => connects++);
    expect(transport.connected).toBe(false);
    uplink.start();
    await uplink.waitConnected();
    expect(transport.connected).toBe(true);
    await waitFor('connect listener ran', () => connects === 1);
    const aggregator = await mqtt.connectAsync(broker.url);
    cleanups.push(() => aggregator.endAsync(true));
    const seen: string[] = [];
    aggregator.on('message', (topic, payload) => seen.push(`${topic} ${payload.toString()}`));
    await aggregator.subscribeAsync(`flex/v1/gw/${GATEWAY.toLowerCase()}/ack`, { qos: 1 });
    await transport.publishStatus('{"status":1}');
    await waitFor('status seen', () => seen.length === 1);
    expect(seen).toEqual([`flex/v1/gw/${GATEWAY.toLowerCase()}/ack {"status":1}`]);
  });
});
