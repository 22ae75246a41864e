/**
 * For tests: a real MQTT broker (aedes) on a loopback TCP port that can be stopped and started again
 * on the same port (a broker restart: retained messages and sessions are gone, as after a reboot of a
 * broker without persistence), and a subscriber that collects what it sees.
 */
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { Aedes } from 'aedes';
import mqtt, { type MqttClient } from 'mqtt';

export class TestBroker {
  port = 0;
  private aedes: Aedes | undefined;
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();

  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.server !== undefined;
  }

  /** Listens on `port` (default: the port of the previous start, or a free one the first time). */
  async start(port = this.port): Promise<void> {
    if (this.server) throw new Error('broker already running');
    const aedes = await Aedes.createBroker();
    const server = createServer((socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
      aedes.handle(socket);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.aedes = aedes;
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
  }

  /** Closes every connection and the listener (a broker crash: no will is sent for the clients). */
  async stop(): Promise<void> {
    const server = this.server;
    const aedes = this.aedes;
    this.server = undefined;
    this.aedes = undefined;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
    if (aedes) await new Promise<void>((resolve) => aedes.close(() => resolve()));
  }
}

export interface Received {
  topic: string;
  payload: string;
  retain: boolean;
}

/** An MQTT client that records every message on `topics`, with a wait for the next matching one. */
export class Recorder {
  readonly messages: Received[] = [];
  private constructor(readonly client: MqttClient) {}

  /** Subscribes to `topics` (again by itself after a broker restart). */
  static async connect(url: string, topics: string[]): Promise<Recorder> {
    const client = await mqtt.connectAsync(url, { reconnectPeriod: 200, clientId: `recorder-${process.pid}-${Date.now() % 100000}` });
    const recorder = new Recorder(client);
    client.on('message', (topic, payload, packet) => recorder.messages.push({ topic, payload: payload.toString('utf8'), retain: packet.retain }));
    client.on('error', () => undefined);
    await client.subscribeAsync(topics, { qos: 1 });
    return recorder;
  }

  /** Resolves with the first message from index `from` on that matches, waiting up to `timeoutMs` real ms. */
  async next(match: (m: Received) => boolean, from = 0, timeoutMs = 3000): Promise<Received> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.messages.slice(from).find(match);
      if (found) return found;
      if (Date.now() > deadline) throw new Error(`no matching message within ${timeoutMs} ms; saw ${JSON.stringify(this.messages.slice(from))}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  publish(topic: string, payload: string): Promise<unknown> {
    return this.client.publishAsync(topic, payload, { qos: 1 });
  }

  async close(): Promise<void> {
    await this.client.endAsync(true).catch(() => undefined);
  }
}
