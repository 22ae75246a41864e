/**
 * The chain client: JSON-RPC to any EVM chain for the proof registry of PROTOCOL.md §7.
 *
 * It speaks raw JSON-RPC through viem's HTTP client and checks every reply itself, so a malformed
 * reply (not JSON, not JSON-RPC, a field of the wrong type) becomes an `RpcMalformedError` naming
 * the call, never a crash or a NaN further down. viem does the rest: ABI encoding, transaction
 * serialisation and signing, revert decoding.
 *
 * The client holds no state about transactions: nonces, raw transactions and their states live in
 * the outbox's store (outbox.ts).
 */
import {
  BaseError,
  decodeErrorResult,
  encodeFunctionData,
  getAddress,
  isAddress,
  isHex,
  keccak256,
  type Address,
  type Hex,
} from 'viem';
import { privateKeyToAccount, type PrivateKeyAccount } from 'viem/accounts';
import { getHttpRpcClient, type HttpRpcClient } from 'viem/utils';
import type { Log } from '../drivers/log.js';
import { abi as proofRegistryAbi } from './contracts/generated/ProofRegistry.js';
import type { MeterProof } from './eip712.js';

export type { MeterProof };

/** Where the chain is and what is deployed on it (the agent's config `chain:` section). */
export interface ChainConfig {
  /** JSON-RPC endpoint, http(s). */
  readonly rpcUrl: string;
  /** The chain id the node must report (eth_chainId) and transactions are signed for. */
  readonly chainId: number;
  readonly contracts: { readonly proofs: Address };
  /** Blocks (counting the one that holds it) before a mined transaction counts as confirmed; ≥ 1. */
  readonly confirmations: number;
  /** Per request; default 10 000 ms. */
  readonly rpcTimeoutMs?: number;
}

/** A proof with the gateway's 65-byte EIP-712 signature. */
export interface SignedMeterProof {
  readonly proof: MeterProof;
  readonly signature: Hex;
}

// ---- errors -----------------------------------------------------------------------------------

/** Base of every error this client raises. `retryable`: the same call may work later. */
export class ChainError extends Error {
  override readonly name: string = 'ChainError';
  readonly retryable: boolean = true;
}

/** The configuration does not match the chain (wrong chain id, no contract). Permanent until reconfigured. */
export class ChainConfigError extends ChainError {
  override readonly name = 'ChainConfigError';
  override readonly retryable = false;
}

/** The gateway's account cannot pay for the transaction. Nothing was sent; fund the account. */
export class ChainFundsError extends ChainError {
  override readonly name = 'ChainFundsError';
  constructor(
    message: string,
    readonly address: Address,
    readonly balanceWei: bigint,
    readonly neededWei: bigint,
  ) {
    super(message);
  }
}

/** A JSON-RPC call failed. `method` names the call. */
export class RpcError extends ChainError {
  override readonly name: string = 'RpcError';
  constructor(
    readonly method: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${method}: ${message}`, options);
  }
}

/** The endpoint could not be reached or did not answer in time. */
export class RpcUnreachableError extends RpcError {
  override readonly name = 'RpcUnreachableError';
}

/** The reply was not JSON, not JSON-RPC, or a result of the wrong type. */
export class RpcMalformedError extends RpcError {
  override readonly name = 'RpcMalformedError';
}

/** The node answered with a JSON-RPC error object. */
export class RpcResponseError extends RpcError {
  override readonly name = 'RpcResponseError';
  constructor(
    method: string,
    readonly code: number,
    readonly rpcMessage: string,
    readonly data: unknown,
  ) {
    super(method, `node replied error ${code}: ${rpcMessage}`);
  }
}

/** The call would revert; `errorName`/`args` are decoded from the ProofRegistry ABI when possible. */
export class ContractRevertError extends ChainError {
  override readonly name = 'ContractRevertError';
  override readonly retryable = false;
  constructor(
    readonly method: string,
    readonly errorName: string,
    readonly args: readonly unknown[],
    readonly data: Hex | undefined,
  ) {
    super(`${method} would revert: ${errorName}(${args.map((a) => String(a)).join(', ')})`);
  }
}

// ---- results ----------------------------------------------------------------------------------

export interface ChainStatus {
  readonly chainId: number;
  readonly address: Address;
  readonly balanceWei: bigint;
  readonly blockNumber: number;
}

export interface TxReceipt {
  readonly transactionHash: Hex;
  readonly blockNumber: number;
  readonly blockHash: Hex;
  /** false: mined but reverted. */
  readonly success: boolean;
}

/** What became of a raw transaction handed to eth_sendRawTransaction. */
export type BroadcastResult =
  | { readonly kind: 'accepted' } // the node took it, or already had it
  | { readonly kind: 'nonce-too-low' } // the nonce is used on chain (by this tx or another)
  | { readonly kind: 'underpriced' }; // another transaction with this nonce is in the node's pool

export interface SignedTx {
  readonly raw: Hex;
  readonly hash: Hex;
  readonly nonce: number;
  /** Most the transaction can cost (gas limit × max fee). */
  readonly maxCostWei: bigint;
}

export interface FeeParams {
  readonly gas: bigint;
  /** EIP-1559 chains; on legacy chains `gasPrice` instead. */
  readonly maxFeePerGas?: bigint;
  readonly maxPriorityFeePerGas?: bigint;
  readonly gasPrice?: bigint;
}

export interface ChainClientOptions {
  readonly log: Log;
  /** Tests: another fetch. */
  readonly fetchFn?: typeof fetch;
  /** Gas limit = estimate × this (default 1.25). */
  readonly gasMarginPct?: number;
}

// ---- reply validation -------------------------------------------------------------------------

const HEX_QUANTITY = /^0x(0|[1-9a-fA-F][0-9a-fA-F]*)$/;
const HASH32 = /^0x[0-9a-fA-F]{64}$/;

function quantity(method: string, value: unknown, what: string): bigint {
  if (typeof value !== 'string' || !HEX_QUANTITY.test(value)) {
    throw new RpcMalformedError(method, `${what} is not a hex quantity: ${preview(value)}`);
  }
  return BigInt(value);
}

function smallQuantity(method: string, value: unknown, what: string): number {
  const v = quantity(method, value, what);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new RpcMalformedError(method, `${what} out of range: ${v}`);
  return Number(v);
}

function hash32(method: string, value: unknown, what: string): Hex {
  if (typeof value !== 'string' || !HASH32.test(value)) {
    throw new RpcMalformedError(method, `${what} is not a 32-byte hex string: ${preview(value)}`);
  }
  return value.toLowerCase() as Hex;
}

function hexData(method: string, value: unknown, what: string): Hex {
  if (typeof value !== 'string' || !isHex(value, { strict: true }) || value.length % 2 !== 0) {
    throw new RpcMalformedError(method, `${what} is not hex data: ${preview(value)}`);
  }
  return value as Hex;
}

function object(method: string, value: unknown, what: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new RpcMalformedError(method, `${what} is not an object: ${preview(value)}`);
  }
  return value as Record<string, unknown>;
}

function preview(value: unknown): string {
  let s: string;
  try {
    s = JSON.stringify(value) ?? String(value);
  } catch {
    s = String(value);
  }
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

function messageOf(err: unknown): string {
  if (err instanceof BaseError) return err.shortMessage;
  return err instanceof Error ? err.message : String(err);
}

// ---- the client -------------------------------------------------------------------------------

type BlockTag = 'latest' | 'pending' | number;

function tag(block: BlockTag): string {
  return typeof block === 'number' ? `0x${block.toString(16)}` : block;
}

export class ChainClient {
  readonly address: Address;
  readonly config: ChainConfig;
  private readonly account: PrivateKeyAccount;
  private readonly rpc: HttpRpcClient;
  private readonly log: Log;
  private readonly timeoutMs: number;
  private readonly gasMarginPct: number;
  private nextId = 1;

  constructor(config: ChainConfig, privateKey: Hex, options: ChainClientOptions) {
    if (!Number.isSafeInteger(config.chainId) || config.chainId <= 0) {
      throw new ChainConfigError(`chain id must be a positive integer, got ${String(config.chainId)}`);
    }
    if (!isAddress(config.contracts.proofs, { strict: false })) {
      throw new ChainConfigError(`proof registry address is not an address: ${String(config.contracts.proofs)}`);
    }
    if (!Number.isSafeInteger(config.confirmations) || config.confirmations < 1) {
      throw new ChainConfigError(`confirmations must be an integer ≥ 1, got ${String(config.confirmations)}`);
    }
    this.config = { ...config, contracts: { proofs: getAddress(config.contracts.proofs) } };
    this.account = privateKeyToAccount(privateKey);
    this.address = this.account.address;
    this.timeoutMs = config.rpcTimeoutMs ?? 10_000;
    this.gasMarginPct = options.gasMarginPct ?? 125;
    this.log = options.log.child({ module: 'chain' });
    this.rpc = getHttpRpcClient(config.rpcUrl, options.fetchFn ? { fetchFn: options.fetchFn } : {});
  }

  /** One JSON-RPC call; the result unchecked (callers validate it). Throws RpcError subclasses. */
  async call(method: string, params: readonly unknown[] = []): Promise<unknown> {
    const id = this.nextId++;
    let reply: unknown;
    let httpStatus = 0;
    try {
      reply = await this.rpc.request({
        body: { jsonrpc: '2.0', id, method, params: [...params] },
        timeout: this.timeoutMs,
        onResponse: (response) => {
          httpStatus = response.status;
        },
      });
    } catch (err) {
      // viem wraps a body that is not JSON in an HttpRequestError whose cause is the SyntaxError.
      const cause = (err as { cause?: unknown }).cause;
      if (httpStatus >= 400) {
        throw new RpcUnreachableError(method, `${this.config.rpcUrl} unreachable: HTTP ${httpStatus}`, { cause: err });
      }
      if (err instanceof SyntaxError || cause instanceof SyntaxError) {
        throw new RpcMalformedError(method, `reply is not JSON (${this.config.rpcUrl})`, { cause: err });
      }
      const status = (err as { status?: unknown }).status;
      const detail = typeof status === 'number' ? `HTTP ${status}` : messageOf(err);
      throw new RpcUnreachableError(method, `${this.config.rpcUrl} unreachable: ${detail}`, { cause: err });
    }
    const body = object(method, reply, 'reply');
    if (body.error !== undefined && body.error !== null) {
      const e = object(method, body.error, 'error');
      const code = typeof e.code === 'number' ? e.code : 0;
      const msg = typeof e.message === 'string' ? e.message : preview(e);
      throw new RpcResponseError(method, code, msg, e.data);
    }
    if (!('result' in body)) throw new RpcMalformedError(method, `reply has neither result nor error: ${preview(reply)}`);
    return body.result;
  }

  async chainId(): Promise<number> {
    return smallQuantity('eth_chainId', await this.call('eth_chainId'), 'chain id');
  }

  async blockNumber(): Promise<number> {
    return smallQuantity('eth_blockNumber', await this.call('eth_blockNumber'), 'block number');
  }

  async balance(block: BlockTag = 'latest'): Promise<bigint> {
    return quantity('eth_getBalance', await this.call('eth_getBalance', [this.address, tag(block)]), 'balance');
  }

  /** Transactions sent from the gateway's account as of `block` (the next nonce there). */
  async transactionCount(block: BlockTag): Promise<number> {
    const method = 'eth_getTransactionCount';
    return smallQuantity(method, await this.call(method, [this.address, tag(block)]), 'transaction count');
  }

  async code(address: Address): Promise<Hex> {
    return hexData('eth_getCode', await this.call('eth_getCode', [address, 'latest']), 'code');
  }

  /** The canonical block hash at `blockNumber`, undefined when the chain is not that long. */
  async blockHash(blockNumber: number): Promise<Hex | undefined> {
    const method = 'eth_getBlockByNumber';
    const result = await this.call(method, [tag(blockNumber), false]);
    if (result === null) return undefined;
    return hash32(method, object(method, result, 'block').hash, 'block hash');
  }

  async receipt(txHash: Hex): Promise<TxReceipt | undefined> {
    const method = 'eth_getTransactionReceipt';
    const result = await this.call(method, [txHash]);
    if (result === null) return undefined;
    const r = object(method, result, 'receipt');
    // A pending "receipt" (some nodes) has no block yet.
    if (r.blockHash === null || r.blockNumber === null) return undefined;
    const status = smallQuantity(method, r.status, 'status');
    if (status !== 0 && status !== 1) throw new RpcMalformedError(method, `status is ${status}`);
    const transactionHash = hash32(method, r.transactionHash, 'transactionHash');
    if (transactionHash !== txHash.toLowerCase()) {
      throw new RpcMalformedError(method, `receipt for ${transactionHash}, asked for ${txHash}`);
    }
    return {
      transactionHash,
      blockNumber: smallQuantity(method, r.blockNumber, 'blockNumber'),
      blockHash: hash32(method, r.blockHash, 'blockHash'),
      success: status === 1,
    };
  }

  /**
   * Checks the configuration against the node, before anything is signed or sent: the chain id,
   * the proof registry's code, the account's balance. Throws ChainConfigError / ChainFundsError /
   * RpcError.
   */
  async check(): Promise<ChainStatus> {
    const chainId = await this.chainId();
    if (chainId !== this.config.chainId) {
      throw new ChainConfigError(
        `wrong chain: ${this.config.rpcUrl} is chain ${chainId}, the config says chain ${this.config.chainId}`,
      );
    }
    const proofs = this.config.contracts.proofs;
    const code = await this.code(proofs);
    if (code === '0x') throw new ChainConfigError(`no contract at ${proofs} on chain ${chainId} (proof registry)`);
    const balanceWei = await this.balance();
    if (balanceWei === 0n) {
      throw new ChainFundsError(
        `account ${this.address} has no funds on chain ${chainId}: fund it to anchor proofs (nothing was sent)`,
        this.address,
        0n,
        1n,
      );
    }
    const blockNumber = await this.blockNumber();
    return { chainId, address: this.address, balanceWei, blockNumber };
  }

  /** Calldata for `anchor` (one proof) or `anchorBatch` (several, in the given order). */
  anchorCalldata(items: readonly SignedMeterProof[]): Hex {
    if (items.length === 0) throw new RangeError('anchorCalldata: no proofs');
    const tuple = (p: MeterProof) => ({
      gateway: p.gateway,
      intervalStart: BigInt(p.intervalStart),
      intervalEnd: BigInt(p.intervalEnd),
      count: p.count,
      root: p.root,
      importWh: BigInt(p.importWh),
      exportWh: BigInt(p.exportWh),
    });
    if (items.length === 1) {
      const only = items[0]!;
      return encodeFunctionData({ abi: proofRegistryAbi, functionName: 'anchor', args: [tuple(only.proof), only.signature] });
    }
    return encodeFunctionData({
      abi: proofRegistryAbi,
      functionName: 'anchorBatch',
      args: [items.map((i) => tuple(i.proof)), items.map((i) => i.signature)],
    });
  }

  /**
   * Gas and fees for sending `data` to the proof registry now. A call that would revert throws
   * ContractRevertError with the registry's error decoded (AlreadyAnchored, OutOfOrder, WrongSigner …).
   */
  async fees(data: Hex): Promise<FeeParams> {
    const to = this.config.contracts.proofs;
    let estimate: bigint;
    try {
      estimate = quantity('eth_estimateGas', await this.call('eth_estimateGas', [{ from: this.address, to, data }]), 'gas');
    } catch (err) {
      throw this.revertOrRethrow('eth_estimateGas', err);
    }
    const gas = (estimate * BigInt(this.gasMarginPct)) / 100n;
    const block = object('eth_getBlockByNumber', await this.call('eth_getBlockByNumber', ['latest', false]), 'block');
    if (block.baseFeePerGas === undefined || block.baseFeePerGas === null) {
      const gasPrice = quantity('eth_gasPrice', await this.call('eth_gasPrice'), 'gas price');
      return { gas, gasPrice };
    }
    const baseFee = quantity('eth_getBlockByNumber', block.baseFeePerGas, 'baseFeePerGas');
    let priority: bigint;
    try {
      priority = quantity('eth_maxPriorityFeePerGas', await this.call('eth_maxPriorityFeePerGas'), 'priority fee');
    } catch (err) {
      if (!(err instanceof RpcResponseError)) throw err;
      priority = 1_000_000_000n; // the method is optional on some nodes: 1 gwei
    }
    // Twice the base fee: stays includable through six full blocks of base-fee rises.
    return { gas, maxFeePerGas: baseFee * 2n + priority, maxPriorityFeePerGas: priority };
  }

  /** Signs (does not send) a transaction to the proof registry. */
  async signTransaction(data: Hex, nonce: number, fees: FeeParams): Promise<SignedTx> {
    const to = this.config.contracts.proofs;
    const chainId = this.config.chainId;
    const raw =
      fees.maxFeePerGas !== undefined
        ? await this.account.signTransaction({
            type: 'eip1559',
            chainId,
            nonce,
            to,
            data,
            gas: fees.gas,
            maxFeePerGas: fees.maxFeePerGas,
            maxPriorityFeePerGas: fees.maxPriorityFeePerGas ?? 0n,
          })
        : await this.account.signTransaction({ type: 'legacy', chainId, nonce, to, data, gas: fees.gas, gasPrice: fees.gasPrice ?? 0n });
    const maxCostWei = fees.gas * (fees.maxFeePerGas ?? fees.gasPrice ?? 0n);
    return { raw, hash: keccak256(raw), nonce, maxCostWei };
  }

  /**
   * Hands a raw transaction to the node. "already known" counts as accepted; "nonce too low" and
   * "underpriced" are results (the outbox decides); "insufficient funds" throws ChainFundsError.
   */
  async broadcast(raw: Hex): Promise<BroadcastResult> {
    const method = 'eth_sendRawTransaction';
    try {
      const result = await this.call(method, [raw]);
      hash32(method, result, 'transaction hash');
      return { kind: 'accepted' };
    } catch (err) {
      if (!(err instanceof RpcResponseError)) throw err;
      const m = err.rpcMessage.toLowerCase();
      if (/already known|known transaction|already imported|already exists|alreadyknown/.test(m)) return { kind: 'accepted' };
      if (/nonce too low|nonce is too low|old nonce|nonce has already been used/.test(m)) return { kind: 'nonce-too-low' };
      if (/underpriced|replacement/.test(m)) return { kind: 'underpriced' };
      if (/insufficient funds/.test(m)) {
        throw new ChainFundsError(`account ${this.address} cannot pay for the transaction: ${err.rpcMessage}`, this.address, 0n, 0n);
      }
      throw err;
    }
  }

  /** The registry's record of (gateway, intervalStart). */
  async rootOf(gateway: Address, intervalStart: number): Promise<{ root: Hex; count: number; anchored: boolean }> {
    const method = 'eth_call rootOf';
    const data = encodeFunctionData({ abi: proofRegistryAbi, functionName: 'rootOf', args: [gateway, BigInt(intervalStart)] });
    const out = hexData(method, await this.call('eth_call', [{ to: this.config.contracts.proofs, data }, 'latest']), 'result');
    if (out.length !== 2 + 3 * 64) throw new RpcMalformedError(method, `result has ${(out.length - 2) / 2} bytes, expected 96`);
    const word = (i: number) => BigInt(`0x${out.slice(2 + i * 64, 2 + (i + 1) * 64)}`);
    return { root: `0x${out.slice(2, 66)}` as Hex, count: Number(word(1)), anchored: word(2) === 1n };
  }

  /** The ProofAnchored event of (gateway, intervalStart), if any: which transaction anchored it. */
  async findAnchorEvent(gateway: Address, intervalStart: number): Promise<TxReceipt | undefined> {
    const method = 'eth_getLogs';
    const topic0 = keccak256(
      new TextEncoder().encode('ProofAnchored(address,uint64,uint64,uint32,bytes32,uint64,uint64)'),
    );
    const pad = (v: bigint) => `0x${v.toString(16).padStart(64, '0')}`;
    const result = await this.call(method, [
      {
        address: this.config.contracts.proofs,
        fromBlock: '0x0',
        toBlock: 'latest',
        topics: [topic0, pad(BigInt(gateway)), pad(BigInt(intervalStart))],
      },
    ]);
    if (!Array.isArray(result)) throw new RpcMalformedError(method, `result is not an array: ${preview(result)}`);
    const log = result[0] as unknown;
    if (log === undefined) return undefined;
    const l = object(method, log, 'log');
    return {
      transactionHash: hash32(method, l.transactionHash, 'transactionHash'),
      blockNumber: smallQuantity(method, l.blockNumber, 'blockNumber'),
      blockHash: hash32(method, l.blockHash, 'blockHash'),
      success: true,
    };
  }

  private revertOrRethrow(method: string, err: unknown): unknown {
    if (!(err instanceof RpcResponseError)) return err;
    const data = extractRevertData(err.data);
    if (data !== undefined && data.length >= 10) {
      try {
        const decoded = decodeErrorResult({ abi: proofRegistryAbi, data });
        return new ContractRevertError(method, decoded.errorName, decoded.args ?? [], data);
      } catch {
        return new ContractRevertError(method, `unknown error ${data.slice(0, 10)}`, [], data);
      }
    }
    if (/revert/i.test(err.rpcMessage)) return new ContractRevertError(method, err.rpcMessage, [], data);
    return err;
  }
}

function extractRevertData(data: unknown): Hex | undefined {
  if (typeof data === 'string' && isHex(data)) return data;
  if (typeof data === 'object' && data !== null && 'data' in data) return extractRevertData((data as { data: unknown }).data);
  return undefined;
}

/** True for errors that mean "try again later" (network, node errors, funds), false for configuration and reverts. */
export function isRetryable(err: unknown): boolean {
  return err instanceof ChainError ? err.retryable : true;
}
