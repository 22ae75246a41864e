/**
 * serialport's Linux binding, with a hung-up line reported as a disconnect.
 *
 * When a serial device goes away (a USB RS-485 adapter unplugged, the far end of a pty closed) the
 * kernel hangs the tty up. A read that races the hang-up fails with EIO, and serialport closes the
 * port; a read after it returns 0 bytes (end of file), and @serialport/bindings-cpp 13's `unixRead`
 * retries a zero-byte read at once, for ever: the port never closes, the bus never notices, and the
 * loop burns a core and grows memory until the process dies (serialport/bindings-cpp#162, open).
 *
 * The port is opened non-blocking with VMIN 1, so a read with nothing to read fails with EAGAIN;
 * 0 bytes means end of file and nothing else. Here the read that `unixRead` makes turns 0 bytes
 * into an ENXIO error: `unixRead` marks it as a disconnect, serialport closes the port with a
 * DisconnectedError, and the bus reopens it when the device comes back.
 */
import { read } from 'node:fs';
import { promisify } from 'node:util';
import { LinuxBinding, type LinuxBindingInterface } from '@serialport/bindings-cpp';
// Not re-exported by the package's index (which has no export map): the same function serialport's
// Linux binding reads with, given our read.
import { unixRead } from '@serialport/bindings-cpp/dist/unix-read.js';

const readAsync = promisify(read);

/** Error of a read that found the line hung up (the code serialport takes for a disconnect). */
export class HungUpError extends Error {
  readonly code = 'ENXIO';
  constructor(readonly path: string) {
    super(`${path}: serial line hung up (device gone)`);
    this.name = 'HungUpError';
  }
}

/** The binding to give serialport (`binding` option) on Linux; undefined elsewhere (its default). */
export const serialBinding: LinuxBindingInterface | undefined = process.platform === 'linux' ? hangUpAwareLinuxBinding() : undefined;

function hangUpAwareLinuxBinding(): LinuxBindingInterface {
  return {
    list: () => LinuxBinding.list(),
    async open(options) {
      const port = await LinuxBinding.open(options);
      // unixRead calls it as (fd, buffer, offset, length, null); the cast is to fs.read's overloads.
      const readOrHangUp = (async (fd: number, buffer: Buffer, offset: number, length: number, position: null) => {
        const result = await readAsync(fd, buffer, offset, length, position);
        if (result.bytesRead === 0) throw new HungUpError(options.path);
        return result;
      }) as typeof readAsync;
      const originalRead = port.read.bind(port);
      port.read = async (buffer, offset, length) => {
        // The original checks these, then calls unixRead with no way to pass our read.
        const valid = port.isOpen && Buffer.isBuffer(buffer) && Number.isInteger(offset) && Number.isInteger(length) && buffer.length >= offset + length;
        if (!valid) return originalRead(buffer, offset, length); // throws the original's error
        return unixRead({ binding: port, buffer, offset, length, fsReadAsync: readOrHangUp });
      };
      return port;
    },
  };
}
