/**
 * An MQTT broker inside the agent process (aedes on a TCP socket), for the demo, for tests, and for
 * gateways that run no broker of their own. Port 0 picks a free port.
 */
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { Aedes } from 'aedes';

export interface EmbeddedBroker {
  readonly url: string;
  readonly host: string;
  readonly port: number;
  close(): Promise<void>;
}

export async function startEmbeddedBroker(
  options: { host?: string; port?: number; credentials?: { username: string; password: string } } = {},
): Promise<EmbeddedBroker> {
  const host = options.host ?? '127.0.0.1';
  const aedes = await Aedes.createBroker();
  const credentials = options.credentials;
  if (credentials) {
    // With credentials configured, every client (the agent's own included) must present them.
    aedes.authenticate = (_client, username, password, done) => {
      const ok = username === credentials.username && password !== undefined && Buffer.from(password).toString('utf8') === credentials.password;
      done(null, ok);
    };
  }
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    // No Nagle: a client that publishes (statuses) leaves small PUBACKs unacknowledged by its delayed
    // ACK, and Nagle would then hold the next message to it (an order) for up to 40 ms.
    socket.setNoDelay(true);
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    aedes.handle(socket);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  let closing: Promise<void> | undefined;
  return {
    url: `mqtt://${host.includes(':') ? `[${host}]` : host}:${port}`,
    host,
    port,
    close() {
      closing ??= new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => aedes.close(() => resolve()));
      });
      return closing;
    },
  };
}
