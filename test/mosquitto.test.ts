/**
 * Interop: the local API on a real Mosquitto broker (Debian's package), as on a gateway that runs
 * its own broker. After the broker restarts (and has lost every retained message), the agent
 * reconnects and publishes its retained topics again.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Agent } from '../agent/agent.js';
import { silentLog } from '../drivers/log.js';
import { stringify } from 'yaml';
import { exited, freePort, homeConfig, recorder, requirePackage, spawnCli, startFrozenHome, tempDir, waitFor } from './helpers.js';

const dir = tempDir();
afterAll(() => dir.remove());

function mosquittoBin(): string {
  return ['/usr/sbin/mosquitto', '/usr/bin/mosquitto'].find((p) => existsSync(p)) ?? 'mosquitto';
}

async function startMosquitto(port: number): Promise<ChildProcess> {
  const conf = join(dir.path, `mosquitto-${port}.conf`);
  writeFileSync(conf, `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\n`);
  const child = spawn(mosquittoBin(), ['-c', conf], { stdio: 'ignore' });
  // Ready when it accepts a connection.
  await waitFor('mosquitto listening', () => child.exitCode === null && true, 2000);
  for (let i = 0; i < 100; i++) {
    try {
      const probe = await recorder(`mqtt://127.0.0.1:${port}`, ['probe']);
      await probe.close();
      return child;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error(`mosquitto did not start on port ${port}`);
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const done = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await done;
}

describe('local API on Mosquitto', () => {
  it('publishes retained state and info, and republishes them after a broker restart', async () => {
    if (!requirePackage('mosquitto', 'mosquitto')) return;
    const port = await freePort();
    let broker = await startMosquitto(port);
    const home = await startFrozenHome();
    const agent = new Agent({
      config: homeConfig(home, join(dir.path, 'data'), { config: { localApi: { mqtt: { url: `mqtt://127.0.0.1:${port}` } } } }),
      log: silentLog,
    });
    try {
      await agent.start();
      await agent.localApiConnected();
      const prefix = 'flexgate/test-home';
      const first = await recorder(`mqtt://127.0.0.1:${port}`, [`${prefix}/bridge/#`, `${prefix}/devices/+`]);
      await waitFor('retained state and info', () => first.messages.some((m) => m.topic === `${prefix}/bridge/info` && m.retain) && first.messages.some((m) => m.topic === `${prefix}/bridge/state` && m.retain));
      await waitFor('device state', () => first.messages.some((m) => m.topic === `${prefix}/devices/pv`));
      await first.close();

      await stopProcess(broker);
      broker = await startMosquitto(port);
      const second = await recorder(`mqtt://127.0.0.1:${port}`, [`${prefix}/bridge/#`, `${prefix}/devices/+`]);
      const state = await waitFor('state republished after the restart', () => second.messages.find((m) => m.topic === `${prefix}/bridge/state`), 10_000);
      expect(JSON.parse(state.payload)).toEqual({ state: 'online' });
      await waitFor('info republished', () => second.messages.find((m) => m.topic === `${prefix}/bridge/info`), 5000);
      await waitFor('device state republished', () => second.messages.find((m) => m.topic === `${prefix}/devices/battery`), 5000);
      await second.close();

      // A clean stop says offline.
      const watcher = await recorder(`mqtt://127.0.0.1:${port}`, [`${prefix}/bridge/state`]);
      await agent.stop();
      const offline = await waitFor('offline state', () => watcher.messages.find((m) => JSON.parse(m.payload).state === 'offline'), 5000);
      expect(offline.topic).toBe(`${prefix}/bridge/state`);

      // An agent that dies says offline through its last will.
      const file = join(dir.path, 'child.yaml');
      writeFileSync(file, stringify(homeConfig(home, join(dir.path, 'child-data'), { config: { localApi: { mqtt: { url: `mqtt://127.0.0.1:${port}` } } } })));
      watcher.messages.length = 0;
      const child = spawnCli(['start', '--config', file]);
      await waitFor('child online', () => watcher.messages.find((m) => JSON.parse(m.payload).state === 'online'), 15_000);
      child.kill('SIGKILL');
      await exited(child);
      await waitFor('last will', () => watcher.messages.find((m) => JSON.parse(m.payload).state === 'offline'), 5000);
      await watcher.close();
    } finally {
      await agent.stop();
      await home.stop();
      await stopProcess(broker);
    }
  }, 60_000);
});
