/**
 * Sealed-bid commitment of PROTOCOL.md §4:
 * `keccak256(abi.encode(uint256 chainId, address market, bytes32 auctionId, address gateway,
 * uint64 quantityW, uint64 priceMicros, bytes32 salt))`, `market` being the auction contract.
 */
import { encodeAbiParameters, keccak256 } from 'viem';
import { LedgerInputError } from './errors.js';
import { assertField, type Address, type Hex } from './wire.js';

export interface BidCommitmentInput {
  chainId: number;
  /** The auction (market) contract's address. */
  market: Address;
  auctionId: Hex;
  gateway: Address;
  quantityW: number;
  priceMicros: number;
  /** A fresh random 32 bytes per bid. */
  salt: Hex;
}

const COMMITMENT_PARAMS = [
  { type: 'uint256' },
  { type: 'address' },
  { type: 'bytes32' },
  { type: 'address' },
  { type: 'uint64' },
  { type: 'uint64' },
  { type: 'bytes32' },
] as const;

/** The commitment a gateway puts on chain before `commitDeadline`. Throws `LedgerInputError` for a field out of its type. */
export function bidCommitment(input: BidCommitmentInput): Hex {
  if (!Number.isSafeInteger(input.chainId) || input.chainId <= 0) throw new LedgerInputError('chainId', `expected a positive integer, got ${String(input.chainId)}`);
  assertField('market', 'address', input.market);
  assertField('auctionId', 'bytes32', input.auctionId);
  assertField('gateway', 'address', input.gateway);
  assertField('quantityW', 'uint64', input.quantityW);
  assertField('priceMicros', 'uint64', input.priceMicros);
  assertField('salt', 'bytes32', input.salt);
  // Lowercased: viem rejects a mixed-case address whose EIP-55 checksum is wrong; §1 ignores checksums.
  return keccak256(
    encodeAbiParameters(COMMITMENT_PARAMS, [
      BigInt(input.chainId),
      input.market.toLowerCase() as Address,
      input.auctionId.toLowerCase() as Hex,
      input.gateway.toLowerCase() as Address,
      BigInt(input.quantityW),
      BigInt(input.priceMicros),
      input.salt.toLowerCase() as Hex,
    ]),
  );
}
