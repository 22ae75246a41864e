import { describe, expect, it } from 'vitest';
import { RegisterImage } from './image.js';
import { handlePdu } from './pdu.js';

const pdu = (...bytes: number[]) => Buffer.from(bytes);
const read = (fc: 3 | 4, address: number, count: number) => pdu(fc, address >> 8, address & 0xff, count >> 8, count & 0xff);

describe('handlePdu: coils', () => {
  function coilImage(): { image: RegisterImage; writes: Array<[number, boolean]> } {
    const image = new RegisterImage();
    image.defineBlock(0, 4);
    image.defineCoils(400, 10);
    image.defineCoils(500, 1, false); // read-only
    image.setCoil(401, true);
    const writes: Array<[number, boolean]> = [];
    image.onCoilWrite((w) => writes.push([w.address, w.value]));
    return { image, writes };
  }

  it('FC1 reads coils LSB first, FC5 writes one (0xFF00 / 0x0000), FC15 writes several', () => {
    const { image, writes } = coilImage();
    expect(handlePdu(image, pdu(1, 0x01, 0x90, 0, 10))).toEqual(pdu(1, 2, 0b0000_0010, 0)); // 400..409
    expect(handlePdu(image, pdu(5, 0x01, 0x90, 0xff, 0x00))).toEqual(pdu(5, 0x01, 0x90, 0xff, 0x00));
    expect(image.readCoils(400, 2)).toEqual([true, true]);
    // FC15: 9 coils from 400: 1,0,1,0,0,0,0,1 | 1
    expect(handlePdu(image, pdu(15, 0x01, 0x90, 0, 9, 2, 0b1000_0101, 0b1))).toEqual(pdu(15, 0x01, 0x90, 0, 9));
    expect(image.readCoils(400, 9)).toEqual([true, false, true, false, false, false, false, true, true]);
    expect(writes).toHaveLength(10);
    expect(handlePdu(image, pdu(1, 0x01, 0xf4, 0, 1))).toEqual(pdu(1, 1, 0));
  });

  it('answers bad coil requests with the right exception, writing nothing', () => {
    const { image, writes } = coilImage();
    expect(handlePdu(image, pdu(5, 0x01, 0x90, 0x12, 0x34))).toEqual(pdu(0x85, 3)); // neither on nor off
    expect(handlePdu(image, pdu(5, 0x01, 0xf4, 0xff, 0x00))).toEqual(pdu(0x85, 2)); // read-only coil
    expect(handlePdu(image, pdu(1, 0x01, 0x90, 0, 11))).toEqual(pdu(0x81, 2)); // 410 undefined
    expect(handlePdu(image, pdu(1, 0x01, 0x90, 0, 0))).toEqual(pdu(0x81, 3));
    expect(handlePdu(image, pdu(15, 0x01, 0x97, 0, 4, 1, 0xf))).toEqual(pdu(0x8f, 2)); // 407..410: 410 undefined
    expect(handlePdu(image, pdu(15, 0x01, 0x90, 0, 9, 1, 0xff))).toEqual(pdu(0x8f, 3)); // byte count
    expect(writes).toEqual([]);
    // A device without coils does not know the functions.
    const plain = new RegisterImage();
    plain.defineBlock(0, 2);
    expect(handlePdu(plain, pdu(1, 0, 0, 0, 1))).toEqual(pdu(0x81, 1));
    expect(handlePdu(plain, pdu(5, 0, 0, 0xff, 0))).toEqual(pdu(0x85, 1));
    expect(handlePdu(plain, pdu(15, 0, 0, 0, 1, 1, 1))).toEqual(pdu(0x8f, 1));
  });
});

describe('handlePdu: holding and input tables', () => {
  const image = new RegisterImage();
  image.defineBlock(100, 4, 'input');
  image.defineBlock(200, 2, 'holding');
  image.defineBlock(300, 2); // both
  image.set(100, [1, 2, 3, 4]);
  image.set(200, [5, 6]);
  image.set(300, [7, 8]);
  image.setWritable(200, 2);
  image.setWritable(300, 2);

  it('FC4 reads input and shared blocks, FC3 holding and shared blocks; others → exception 2', () => {
    expect(handlePdu(image, read(4, 100, 4))).toEqual(pdu(4, 8, 0, 1, 0, 2, 0, 3, 0, 4));
    expect(handlePdu(image, read(3, 100, 1))).toEqual(pdu(0x83, 2));
    expect(handlePdu(image, read(3, 200, 2))).toEqual(pdu(3, 4, 0, 5, 0, 6));
    expect(handlePdu(image, read(4, 200, 1))).toEqual(pdu(0x84, 2));
    expect(handlePdu(image, read(3, 300, 2))).toEqual(pdu(3, 4, 0, 7, 0, 8));
    expect(handlePdu(image, read(4, 300, 2))).toEqual(pdu(4, 4, 0, 7, 0, 8));
  });

  it('writes reach holding registers only', () => {
    expect(handlePdu(image, pdu(6, 0, 100, 0, 9))).toEqual(pdu(0x86, 2));
    expect(() => image.setWritable(100, 1)).toThrow(/input register/);
    expect(handlePdu(image, pdu(6, 0, 200, 0, 9))).toEqual(pdu(6, 0, 200, 0, 9));
    expect(handlePdu(image, pdu(16, 1, 0x2c, 0, 2, 4, 0, 1, 0, 2))).toEqual(pdu(16, 1, 0x2c, 0, 2));
    expect(image.read(200, 1)).toEqual([9]);
    expect(image.read(300, 2)).toEqual([1, 2]);
  });
});

describe('handlePdu: device quirks', () => {
  it('refuseFc6: FC6 → exception 1 and nothing written; FC16 of one register works', () => {
    const image = new RegisterImage();
    image.defineBlock(5050, 2, 'holding');
    image.setWritable(5050, 2);
    image.quirks = { refuseFc6: true };
    expect(handlePdu(image, pdu(6, 0x13, 0xba, 0, 30))).toEqual(pdu(0x86, 1));
    expect(image.read(5050, 1)).toEqual([0]);
    expect(handlePdu(image, pdu(16, 0x13, 0xba, 0, 1, 2, 0, 30))).toEqual(pdu(16, 0x13, 0xba, 0, 1));
    expect(image.read(5050, 1)).toEqual([30]);
  });

  it('maxReadRegisters and valueStarts: a 40-register limit (→ 3) and no read that splits a value (→ 2)', () => {
    const image = new RegisterImage();
    image.defineBlock(0, 60, 'input');
    image.quirks = { maxReadRegisters: 40, valueStarts: new Set(Array.from({ length: 30 }, (_, i) => 2 * i)) };
    expect(handlePdu(image, read(4, 0, 40))[1]).toBe(80);
    expect(handlePdu(image, read(4, 0, 41))).toEqual(pdu(0x84, 3));
    expect(handlePdu(image, read(4, 1, 2))).toEqual(pdu(0x84, 2)); // starts inside a value
    expect(handlePdu(image, read(4, 0, 3))).toEqual(pdu(0x84, 2)); // ends inside a value
    expect(handlePdu(image, read(4, 58, 2))[1]).toBe(4); // the last value: nothing after it
  });
});
