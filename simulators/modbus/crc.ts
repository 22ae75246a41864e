/** CRC-16/MODBUS (poly 0xA001 reflected, init 0xFFFF). Appended to RTU frames low byte first. */
export function crc16Modbus(data: Uint8Array): number {
  let crc = 0xffff;
  for (const byte of data) {
    crc ^= byte;
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ 0xa001 : crc >>> 1;
  }
  return crc;
}

/** `frame` followed by its CRC (low byte first). */
export function withCrc(frame: Uint8Array): Buffer {
  const out = Buffer.alloc(frame.length + 2);
  out.set(frame, 0);
  out.writeUInt16LE(crc16Modbus(frame), frame.length);
  return out;
}

/** True when the last two bytes of `frame` are the CRC of the rest. */
export function crcOk(frame: Uint8Array): boolean {
  if (frame.length < 3) return false;
  const body = frame.subarray(0, frame.length - 2);
  const crc = frame[frame.length - 2]! | (frame[frame.length - 1]! << 8);
  return crc16Modbus(body) === crc;
}
