/** Test helpers for the device simulators (not library code). */
import { handlePdu } from '../modbus/pdu.js';

type Image = Parameters<typeof handlePdu>[0];

/** One FC16 request through the PDU handler (as the TCP and RTU servers pass it): undefined, or the exception code. */
export function writeMultiple(image: Image, address: number, values: readonly number[]): number | undefined {
  const request = Buffer.alloc(6 + values.length * 2);
  request.writeUInt8(16, 0);
  request.writeUInt16BE(address, 1);
  request.writeUInt16BE(values.length, 3);
  request.writeUInt8(values.length * 2, 5);
  values.forEach((v, i) => request.writeUInt16BE(v & 0xffff, 6 + i * 2));
  const answer = handlePdu(image, request);
  return answer[0]! & 0x80 ? answer[1] : undefined;
}
