/**
 * `flexgate orders` as a user runs it: the real CLI in a child process, reading the store read-only
 * while the order side still has it open for writing (as beside a running agent).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, tempDir } from '../../test/helpers.js';
import { ManualClock } from '../store/test-clock.js';
import { AGGREGATOR, MINUTE_MS, T0, makeSide, orderMessage, settle, signed, type TestSide } from './test-support.js';

const dir = tempDir('flexgate-orders-cli-');
const configFile = join(dir.path, 'flexgate.yaml');
let side: TestSide;
const ids: Record<'done' | 'cancelled' | 'rejected', string> = { done: '', cancelled: '', rejected: '' };

beforeAll(async () => {
  writeFileSync(
    configFile,
    `gateway: { name: home-1, dataDir: ${JSON.stringify(join(dir.path, 'data'))} }\ndevices:\n  - id: meter\n    class: meter\n    driver: sunspec\n    connection: { tcp: { host: 127.0.0.1 } }\n`,
  );
  side = makeSide({ path: join(dir.path, 'data', 'flexgate.db'), clock: new ManualClock(T0) });
  const done = orderMessage(T0, { sequence: 1, signal: 4, valueW: -2500, start: T0 + MINUTE_MS, durationMs: 15 * MINUTE_MS });
  side.book.submit(signed(done));
  await settle();
  side.audit.setpoint(`${done.orderId}:0`, 'battery', 'setPowerW', 2500, true);
  side.book.started(`${done.orderId}:0`, { atMs: T0 + MINUTE_MS + 200, safetyLimited: false });
  await settle();
  side.clock.advance(20 * MINUTE_MS);
  side.execution.delivered.set(`${done.orderId}:0`, -612);
  side.book.tick();
  await settle();
  const now = side.clock.now();
  const running = orderMessage(now, { sequence: 2, durationMs: 30 * MINUTE_MS });
  side.book.submit(signed(running));
  side.book.submit(signed({ ...running, signal: 0, modification: 1, sequence: 3 }));
  const rejected = orderMessage(now, { sequence: 4, valueW: 999_999 });
  side.book.submit(signed(rejected));
  await settle();
  side.transport.connected = false; // the last status stays pending
  side.book.submit('{"not":"an order"}');
  await settle();
  ids.done = done.orderId;
  ids.cancelled = running.orderId;
  ids.rejected = rejected.orderId;
});

afterAll(async () => {
  await side.close();
  dir.remove();
});

describe('flexgate orders', () => {
  it('lists the orders newest first with aggregator, signal, value, window, state and statuses', async () => {
    const { code, stdout, stderr } = await runCli(['orders', '--config', configFile]);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const firstLines = stdout.split('\n').filter((l) => !l.startsWith(' '));
    expect(firstLines.slice(0, 5).map((l) => l.split('  ')[1])).toEqual([`0x${'00'.repeat(32)}`, ids.rejected, ids.cancelled, ids.cancelled, ids.done]);
    expect(stdout).toContain(`mod 0  SITE_IMPORT_LIMIT 999999 W  rejected: OUT_OF_RANGE`);
    expect(stdout).toContain('NOT_APPLICABLE (OUT_OF_RANGE)');
    expect(stdout).toContain(`mod 1  CANCEL  cancel (ended the order)`);
    expect(stdout).toContain(`aggregator ${AGGREGATOR.address}`);
    expect(stdout).toMatch(new RegExp(`${ids.done}  mod 0  SITE_DELTA -2500 W  completed\\n  aggregator .*\\n  window     2025-11-24T16:01:00.000Z – 2025-11-24T16:16:00.000Z \\(15 min\\)\\n  statuses   RECEIVED, STARTED 0 Wh, COMPLETED -612 Wh`));
    expect(stdout).toContain('INVALID (MALFORMED) [not yet acknowledged by the broker]');
  });

  it('--limit and --json', async () => {
    const { code, stdout } = await runCli(['orders', '--config', configFile, '--limit', '2', '--json']);
    expect(code).toBe(0);
    const views = JSON.parse(stdout) as { orderId: string | null; verdict: string; reasonName: string | null; statuses: { name: string }[] }[];
    expect(views.map((v) => [v.orderId, v.verdict, v.reasonName])).toEqual([
      [`0x${'00'.repeat(32)}`, 'rejected', 'MALFORMED'],
      [ids.rejected, 'rejected', 'OUT_OF_RANGE'],
    ]);
  });

  it('--id prints the whole audit trail of one order; --json gives it with the raw envelope', async () => {
    const text = await runCli(['orders', '--config', configFile, '--id', ids.done.toUpperCase().replace('0X', '0x')]);
    expect(text.code).toBe(0);
    const kinds = text.stdout
      .split('audit trail:\n')[1]!
      .trim()
      .split('\n')
      .map((l) => l.trim().split(/\s+/)[1]);
    expect(kinds).toEqual(['received', 'accepted', 'status_sent', 'setpoint', 'started', 'status_sent', 'completed', 'status_sent']);
    expect(text.stdout).toContain('battery setPowerW = 2500 confirmed');
    const json = await runCli(['orders', '--config', configFile, '--id', ids.done, '--json']);
    const trail = JSON.parse(json.stdout) as { versions: { state: string }[]; trail: { kind: string; raw?: string }[] };
    expect(trail.versions.map((v) => v.state)).toEqual(['completed']);
    expect(JSON.parse(trail.trail[0]!.raw!)).toMatchObject({ type: 'DispatchOrder', message: { orderId: ids.done } });
  });

  it('exit codes: 1 for an order not there or no store, 2 for usage errors', async () => {
    const missing = await runCli(['orders', '--config', configFile, '--id', `0x${'99'.repeat(32)}`]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/no order 0x9999/);
    const bad = await runCli(['orders', '--config', configFile, '--id', '0x12']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--id: expected an orderId/);
    const limit = await runCli(['orders', '--config', configFile, '--limit', '0']);
    expect(limit.code).toBe(2);
    const other = join(dir.path, 'empty.yaml');
    writeFileSync(other, `gateway: { name: home-2, dataDir: ${JSON.stringify(join(dir.path, 'nothing'))} }\ndevices:\n  - id: meter\n    class: meter\n    driver: sunspec\n    connection: { tcp: { host: 127.0.0.1 } }\n`);
    const none = await runCli(['orders', '--config', other]);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/no store at/);
  });
});
