/**
 * serialport's binding with a hung-up line reported as a disconnect, on a real pseudo-terminal pair
 * (socat): stopping socat closes the pty master, which hangs the bus side up as unplugging a USB
 * RS-485 adapter does.
 */
import { LinuxBinding } from '@serialport/bindings-cpp';
import { SerialPort } from 'serialport';
import { describe, expect, it } from 'vitest';
import { HungUpError, serialBinding } from './serial-binding.js';
import { hasSocat, startPtyPair } from './test-support.js';

const socat = hasSocat();
if (!socat && process.env['CI'] === 'true') throw new Error('socat is not installed (apt-get install -y socat); CI must run the RTU tests');

/** Settles with what `promise` did, or 'pending' if it did nothing within `ms`. */
function within<T>(promise: Promise<T>, ms: number): Promise<{ value: T } | { error: unknown } | 'pending'> {
  return Promise.race([
    promise.then(
      (value) => ({ value }),
      (error: unknown) => ({ error }),
    ),
    new Promise<'pending'>((resolve) => setTimeout(() => resolve('pending'), ms)),
  ]);
}

describe.skipIf(!socat || process.platform !== 'linux')('serialBinding (Linux, socat pty pair)', () => {
  it('fails a read on a hung-up line with a disconnect, where the stock binding retries for ever', async () => {
    for (const binding of [serialBinding!, LinuxBinding]) {
      const line = await startPtyPair();
      const port = await binding.open({ path: line.busPath, baudRate: 9600 });
      try {
        await line.stop(); // socat has exited: the bus side is hung up, every read returns 0 bytes
        const outcome = await within(port.read(Buffer.alloc(64), 0, 64), 1000);
        if (binding === LinuxBinding) {
          // The library's behaviour this module exists for (serialport/bindings-cpp#162): when a
          // release fixes it, this fails and serial-binding.ts can go.
          expect(outcome).toBe('pending');
        } else {
          expect(outcome).toMatchObject({ error: expect.any(HungUpError) });
          const { error } = outcome as { error: HungUpError };
          expect(error).toMatchObject({ code: 'ENXIO', disconnect: true, path: line.busPath });
          expect(error.message).toContain('hung up');
        }
      } finally {
        await port.close(); // ends the stock binding's retries too (they stop once the port is closed)
        line.remove();
      }
    }
  });

  it('reads bytes as the stock binding does, and a port on it closes as disconnected when the line goes away', async () => {
    const line = await startPtyPair();
    const device = new SerialPort({ path: line.devicePath, baudRate: 9600 });
    // As modbus-serial opens it: serialport's options with `binding` (not in SerialPort's typings).
    const busOptions = { path: line.busPath, baudRate: 9600, binding: serialBinding! };
    const bus = new SerialPort(busOptions);
    try {
      await Promise.all([device, bus].map((port) => new Promise((resolve) => port.once('open', resolve))));
      const received: Buffer[] = [];
      bus.on('data', (chunk: Buffer) => received.push(chunk));
      bus.on('error', () => {}); // the close below says what happened
      device.write(Buffer.from([1, 3, 0, 0, 0, 1]));
      const startedAt = Date.now();
      while (Buffer.concat(received).length < 6 && Date.now() - startedAt < 2000) await new Promise((r) => setTimeout(r, 5));
      expect(Array.from(Buffer.concat(received))).toEqual([1, 3, 0, 0, 0, 1]);

      const closed = new Promise<unknown>((resolve) => bus.once('close', resolve));
      await new Promise<void>((resolve) => device.close(() => resolve()));
      await line.stop();
      const outcome = await within(closed, 2000);
      expect(outcome).toMatchObject({ value: { disconnected: true } });
      expect(bus.isOpen).toBe(false);
    } finally {
      if (device.isOpen) device.close();
      if (bus.isOpen) bus.close();
      line.remove();
    }
  });
});
