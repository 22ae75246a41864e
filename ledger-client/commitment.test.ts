import { readFileSync } from 'node:fs';
import { encodeAbiParameters, getAddress, keccak256 } from 'viem';
import { describe, expect, it } from 'vitest';
import { bidCommitment, type BidCommitmentInput } from './commitment.js';
import { LedgerInputError } from './errors.js';

interface CommitmentVector extends BidCommitmentInput {
  commitment: string;
}
const vector = JSON.parse(readFileSync(new URL('./vectors/commitment.json', import.meta.url), 'utf8')) as CommitmentVector;
const { commitment: expected, ...input } = vector;

describe('bidCommitment (PROTOCOL.md §4)', () => {
  it('reproduces the commitment of vectors/commitment.json', () => {
    expect(bidCommitment(input)).toBe(expected);
  });

  it('is keccak256 of the ABI encoding of the seven fields in order', () => {
    const encoded = encodeAbiParameters(
      [{ type: 'uint256' }, { type: 'address' }, { type: 'bytes32' }, { type: 'address' }, { type: 'uint64' }, { type: 'uint64' }, { type: 'bytes32' }],
      [31337n, input.market, input.auctionId, input.gateway, 3000n, 180000n, input.salt],
    );
    expect(encoded.length).toBe(2 + 7 * 64);
    expect(keccak256(encoded)).toBe(expected);
  });

  it('ignores the case of addresses and hex (checksummed or upper case give the same commitment)', () => {
    expect(bidCommitment({ ...input, gateway: getAddress(input.gateway), market: input.market.toUpperCase().replace('0X', '0x') as `0x${string}` })).toBe(expected);
    expect(bidCommitment({ ...input, salt: input.salt.toUpperCase().replace('0X', '0x') as `0x${string}` })).toBe(expected);
  });

  it('binds every field: changing any one changes the commitment', () => {
    const changed: BidCommitmentInput[] = [
      { ...input, chainId: 1 },
      { ...input, market: '0x7777777777777777777777777777777777777778' },
      { ...input, auctionId: `0x${'cd'.repeat(31)}ce` },
      { ...input, gateway: '0x19e7e376e7c213b7e7e7e46cc70a5dd086daff2a' },
      { ...input, quantityW: 3001 },
      { ...input, priceMicros: 179999 },
      { ...input, salt: `0x${'5a'.repeat(31)}5b` },
    ];
    const commitments = new Set(changed.map(bidCommitment));
    expect(commitments.size).toBe(changed.length);
    expect(commitments.has(expected as `0x${string}`)).toBe(false);
  });

  it('throws LedgerInputError naming the field for values outside their type', () => {
    const bad: [Partial<BidCommitmentInput>, string][] = [
      [{ quantityW: -1 }, 'quantityW'],
      [{ priceMicros: 1.5 }, 'priceMicros'],
      [{ salt: '0x1234' }, 'salt'],
      [{ market: '0x77' }, 'market'],
      [{ chainId: 0 }, 'chainId'],
    ];
    for (const [patch, field] of bad) {
      let error: unknown;
      try {
        bidCommitment({ ...input, ...patch });
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(LedgerInputError);
      expect((error as LedgerInputError).field).toBe(field);
    }
  });
});
