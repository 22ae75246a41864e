import { ExceptionCode, type RegisterImage } from './image.js';

/** Largest register count of one FC3/FC4 read (Modbus spec). */
export const MAX_READ_REGISTERS = 125;
/** Largest register count of one FC16 write (Modbus spec). */
export const MAX_WRITE_REGISTERS = 123;

export function exceptionPdu(functionCode: number, code: number): Buffer {
  return Buffer.from([(functionCode | 0x80) & 0xff, code & 0xff]);
}

/** Largest coil count of one FC1 read / FC15 write (Modbus spec). */
export const MAX_READ_COILS = 2000;
export const MAX_WRITE_COILS = 0x7b0;

/**
 * Answers one request PDU (function code + data) from a register image; returns the response PDU.
 * Supported: FC1, FC5 and FC15 (coils; exception 1 on a device without coils), FC3 (holding blocks),
 * FC4 (input blocks; blocks of table 'both' answer both), FC6, FC16, with the image's quirks (FC6
 * refused with exception 1, a smaller read limit, reads only on value boundaries). Unknown function →
 * exception 1; malformed PDU or a count outside 1..125 (read) / 1..123 (write) or a byte count that
 * does not match → exception 3 (as the Modbus spec orders the checks); a register outside the table,
 * read-only, or a read that splits a value → exception 2.
 */
export function handlePdu(image: RegisterImage, request: Buffer): Buffer {
  const fc = request[0] ?? 0;
  const quirks = image.quirks;
  switch (fc) {
    case 1: {
      if (!image.supportsCoils) return exceptionPdu(fc, ExceptionCode.IllegalFunction);
      if (request.length !== 5) return exceptionPdu(fc, ExceptionCode.IllegalDataValue);
      const address = request.readUInt16BE(1);
      const count = request.readUInt16BE(3);
      if (count < 1 || count > MAX_READ_COILS) return exceptionPdu(fc, ExceptionCode.IllegalDataValue);
      if (!image.hasCoils(address, count)) return exceptionPdu(fc, ExceptionCode.IllegalDataAddress);
      const bits = image.readCoils(address, count);
      const out = Buffer.alloc(2 + Math.ceil(count / 8));
      out[0] = fc;
      out[1] = Math.ceil(count / 8);
      bits.forEach((on, i) => {
        if (on) out[2 + (i >> 3)] = out[2 + (i >> 3)]! | (1 << (i & 7));
      });
      return out;
    }
    case 5: {
      if (!image.supportsCoils) return exceptionPdu(fc, ExceptionCode.IllegalFunction);
      if (request.length !== 5) return exceptionPdu(fc, ExceptionCode.IllegalDataValue);
      const address = request.readUInt16BE(1);
      const raw = request.readUInt16BE(3);
      if (raw !== 0xff00 && raw !== 0x0000) return exceptionPdu(fc, ExceptionCode.IllegalDataValue);
      const code = image.writeCoilFromBus(address, raw === 0xff00);
      if (code !== undefined) return exceptionPdu(fc, code);
      return Buffer.from(request);
    }
    case 3:
    case 4: {
      if (request.length !== 5) return exceptionPdu(fc, ExceptionCode.IllegalDataValue);
      const address = request.readUInt16BE(1);
      const count = request.readUInt16BE(3);
      if (count < 1 || count > Math.min(MAX_READ_REGISTERS, quirks.maxReadRegisters ?? MAX_READ_REGISTERS)) {
        return exceptionPdu(fc, ExceptionCode.IllegalDataValue);
      }
      const table = fc === 3 ? 'holding' : 'input';
      if (address + count > 0x10000 || !image.isDefined(address, count, table)) {
        return exceptionPdu(fc, ExceptionCode.IllegalDataAddress);
      }
      const starts = quirks.valueStarts;
      if (starts && (!starts.has(address) || (image.isDefined(address + count, 1, table) && !starts.has(address + count)))) {
        return exceptionPdu(fc, ExceptionCode.IllegalDataAddress);
      }
      const values = image.read(address, count);
      const out = Buffer.alloc(2 + count * 2);
      out[0] = fc;
      out[1] = count * 2;
      values.forEach((v, i) => out.writeUInt16BE(v, 2 + i * 2));
      return out;
    }
    case 6: {
      if (quirks.refuseFc6) return exceptionPdu(fc, ExceptionCode.IllegalFunction);
      if (request.length !== 5) return exceptionPdu(fc, ExceptionCode.IllegalDataValue);
      const address = request.readUInt16BE(1);
      const value = request.readUInt16BE(3);
      const code = image.writeFromBus(address, [value]);
      if (code !== undefined) return exceptionPdu(fc, code);
      return Buffer.from(request);
    }
    case 15: {
      if (!image.supportsCoils) return exceptionPdu(fc, ExceptionCode.IllegalFunction);
      if (request.length < 6) return exceptionPdu(fc, ExceptionCode.IllegalDataValue);
      const address = request.readUInt16BE(1);
      const count = request.readUInt16BE(3);
      const byteCount = request[5]!;
      if (count < 1 || count > MAX_WRITE_COILS || byteCount !== Math.ceil(count / 8) || request.length !== 6 + byteCount) {
        return exceptionPdu(fc, ExceptionCode.IllegalDataValue);
      }
      const values: boolean[] = [];
      for (let i = 0; i < count; i++) values.push((request[6 + (i >> 3)]! & (1 << (i & 7))) !== 0);
      const code = image.writeCoilsFromBus(address, values);
      if (code !== undefined) return exceptionPdu(fc, code);
      return request.subarray(0, 5);
    }
    case 16: {
      if (request.length < 6) return exceptionPdu(fc, ExceptionCode.IllegalDataValue);
      const address = request.readUInt16BE(1);
      const count = request.readUInt16BE(3);
      const byteCount = request[5]!;
      if (count < 1 || count > MAX_WRITE_REGISTERS || byteCount !== count * 2 || request.length !== 6 + byteCount) {
        return exceptionPdu(fc, ExceptionCode.IllegalDataValue);
      }
      if (address + count > 0x10000) return exceptionPdu(fc, ExceptionCode.IllegalDataAddress);
      const values: number[] = [];
      for (let i = 0; i < count; i++) values.push(request.readUInt16BE(6 + i * 2));
      const code = image.writeFromBus(address, values);
      if (code !== undefined) return exceptionPdu(fc, code);
      return request.subarray(0, 5);
    }
    default:
      return exceptionPdu(fc, ExceptionCode.IllegalFunction);
  }
}

/** Length in bytes of a request PDU starting at `buf[0]` (its function code), or undefined when unknown/incomplete. */
export function requestPduLength(buf: Buffer): number | undefined {
  const fc = buf[0];
  if (fc === undefined) return undefined;
  if (fc === 3 || fc === 4 || fc === 6 || fc === 1 || fc === 2 || fc === 5) return 5;
  if (fc === 15 || fc === 16) {
    if (buf.length < 6) return undefined;
    return 6 + buf[5]!;
  }
  return undefined;
}
