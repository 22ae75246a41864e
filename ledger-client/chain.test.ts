/**
 * ChainClient against a scripted JSON-RPC endpoint: malformed replies become typed errors naming
 * the call, node errors are classified. The anchoring itself on a real anvil node is tested in
 * agent/store/outbox-store.test.ts (with the SQLite outbox store).
 */
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toFunctionSelector, type Hex } from 'viem';
import { silentLog } from '../drivers/log.js';
import {
  ChainClient,
  ChainConfigError,
  ChainFundsError,
  ContractRevertError,
  RpcMalformedError,
  RpcResponseError,
  RpcUnreachableError,
  type ChainConfig,
} from './chain.js';
import { encodeErrorResult } from 'viem';
import { abi } from './contracts/generated/ProofRegistry.js';

const KEY: Hex = `0x${'11'.repeat(32)}`;
const REGISTRY = '0x5FbDB2315678afecb367f032d93F642f64180aa3';

/** Each method answers with a raw body (or HTTP status + body). */
let replies: Record<string, string | { status: number; body: string }> = {};
let server: Server;
let url: string;

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString('utf8')));
    req.on('end', () => {
      const { method, id } = JSON.parse(body) as { method: string; id: number };
      const reply = replies[method] ?? JSON.stringify({ jsonrpc: '2.0', id, error: { code: -32601, message: `no ${method}` } });
      const { status, body: out } = typeof reply === 'string' ? { status: 200, body: reply } : reply;
      res.writeHead(status, { 'content-type': 'application/json' }).end(out.replace('"ID"', String(id)));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

const ok = (result: unknown) => JSON.stringify({ jsonrpc: '2.0', id: 'ID', result });
const rpcError = (code: number, message: string, data?: unknown) => JSON.stringify({ jsonrpc: '2.0', id: 1, error: { code, message, data } });

function client(overrides: Partial<ChainConfig> = {}): ChainClient {
  return new ChainClient({ rpcUrl: url, chainId: 31337, contracts: { proofs: REGISTRY }, confirmations: 1, rpcTimeoutMs: 2000, ...overrides }, KEY, {
    log: silentLog,
  });
}

describe('ChainClient', () => {
  it('rejects a bad configuration before any call', () => {
    expect(() => client({ chainId: 0 })).toThrow(ChainConfigError);
    expect(() => client({ contracts: { proofs: '0x1234' } })).toThrow(/proof registry address is not an address: 0x1234/);
    expect(() => client({ confirmations: 0 })).toThrow(/confirmations must be an integer ≥ 1/);
  });

  it('turns malformed replies into RpcMalformedError naming the call', async () => {
    const c = client();
    const cases: Array<[string, string, string | RegExp, () => Promise<unknown>]> = [
      ['eth_chainId', 'this is not json', /eth_chainId: reply is not JSON/, () => c.chainId()],
      ['eth_chainId', '{"jsonrpc":"2.0","id":1}', /eth_chainId: reply has neither result nor error/, () => c.chainId()],
      ['eth_chainId', '[1,2]', /eth_chainId: reply is not an object/, () => c.chainId()],
      ['eth_chainId', ok(31337), 'eth_chainId: chain id is not a hex quantity: 31337', () => c.chainId()],
      ['eth_blockNumber', ok('0xzz'), /eth_blockNumber: block number is not a hex quantity/, () => c.blockNumber()],
      ['eth_blockNumber', ok('0x20000000000000'), /eth_blockNumber: block number out of range/, () => c.blockNumber()],
      ['eth_getBalance', ok(null), /eth_getBalance: balance is not a hex quantity: null/, () => c.balance()],
      ['eth_getCode', ok('0x123'), /eth_getCode: code is not hex data/, () => c.code(REGISTRY)],
      ['eth_getBlockByNumber', ok({ hash: 7 }), /eth_getBlockByNumber: block hash is not a 32-byte hex string: 7/, () => c.blockHash(1)],
      ['eth_getTransactionReceipt', ok('receipt'), /eth_getTransactionReceipt: receipt is not an object/, () => c.receipt(`0x${'ab'.repeat(32)}`)],
      [
        'eth_getTransactionReceipt',
        ok({ transactionHash: `0x${'ab'.repeat(32)}`, blockNumber: '0x1', blockHash: `0x${'cd'.repeat(32)}`, status: '0x2' }),
        /eth_getTransactionReceipt: status is 2/,
        () => c.receipt(`0x${'ab'.repeat(32)}`),
      ],
      [
        'eth_getTransactionReceipt',
        ok({ transactionHash: `0x${'ee'.repeat(32)}`, blockNumber: '0x1', blockHash: `0x${'cd'.repeat(32)}`, status: '0x1' }),
        /receipt for 0xee.* asked for 0xab/,
        () => c.receipt(`0x${'ab'.repeat(32)}`),
      ],
      ['eth_sendRawTransaction', ok(42), /eth_sendRawTransaction: transaction hash is not a 32-byte hex string: 42/, () => c.broadcast('0x02')],
      ['eth_call', ok('0x00'), /eth_call rootOf: result has 1 bytes, expected 96/, () => c.rootOf(REGISTRY, 0)],
      ['eth_getLogs', ok({}), /eth_getLogs: result is not an array/, () => c.findAnchorEvent(REGISTRY, 0)],
    ];
    for (const [method, reply, message, call] of cases) {
      replies = { [method]: reply };
      const err = await call().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err, `${method} ← ${reply}`).toBeInstanceOf(RpcMalformedError);
      expect((err as RpcMalformedError).method.startsWith(method)).toBe(true);
      if (typeof message === 'string') expect((err as Error).message).toBe(message);
      else expect((err as Error).message).toMatch(message);
    }
  });

  it('classifies node errors: unreachable, HTTP errors, JSON-RPC errors, broadcast outcomes, reverts', async () => {
    const down = new ChainClient({ rpcUrl: 'http://127.0.0.1:1', chainId: 1, contracts: { proofs: REGISTRY }, confirmations: 1 }, KEY, { log: silentLog });
    await expect(down.chainId()).rejects.toThrow(RpcUnreachableError);
    const c = client();
    replies = { eth_chainId: { status: 502, body: 'bad gateway' } };
    await expect(c.chainId()).rejects.toThrow(/eth_chainId: .* unreachable: HTTP 502/);
    replies = { eth_chainId: rpcError(-32000, 'header not found') };
    const err = await c.chainId().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RpcResponseError);
    expect(err).toMatchObject({ method: 'eth_chainId', code: -32000, rpcMessage: 'header not found' });

    const send = (message: string) => {
      replies = { eth_sendRawTransaction: rpcError(-32000, message) };
      return c.broadcast('0x02');
    };
    await expect(send('already known')).resolves.toEqual({ kind: 'accepted' });
    await expect(send('nonce too low: next nonce 5, tx nonce 4')).resolves.toEqual({ kind: 'nonce-too-low' });
    await expect(send('replacement transaction underpriced')).resolves.toEqual({ kind: 'underpriced' });
    await expect(send('insufficient funds for gas * price + value')).rejects.toBeInstanceOf(ChainFundsError);
    await expect(send('something else')).rejects.toBeInstanceOf(RpcResponseError);

    const data = encodeErrorResult({ abi, errorName: 'OutOfOrder', args: [REGISTRY, 5n, 9n] });
    replies = { eth_estimateGas: rpcError(3, 'execution reverted', data) };
    const revert = await c.fees('0x').catch((e: unknown) => e);
    expect(revert).toBeInstanceOf(ContractRevertError);
    expect(revert).toMatchObject({ errorName: 'OutOfOrder', args: [REGISTRY, 5n, 9n] });
  });

  it('checks the chain id, the registry code and the balance, naming what is wrong', async () => {
    const c = client();
    replies = { eth_chainId: ok('0x1') };
    await expect(c.check()).rejects.toThrow(`wrong chain: ${url} is chain 1, the config says chain 31337`);
    replies = { eth_chainId: ok('0x7a69'), eth_getCode: ok('0x') };
    await expect(c.check()).rejects.toThrow(`no contract at ${REGISTRY} on chain 31337 (proof registry)`);
    replies = { eth_chainId: ok('0x7a69'), eth_getCode: ok('0x6000'), eth_getBalance: ok('0x0') };
    await expect(c.check()).rejects.toThrow(new RegExp(`account ${c.address} has no funds on chain 31337`));
    replies = { eth_chainId: ok('0x7a69'), eth_getCode: ok('0x6000'), eth_getBalance: ok('0x10'), eth_blockNumber: ok('0x5') };
    await expect(c.check()).resolves.toEqual({ chainId: 31337, address: c.address, balanceWei: 16n, blockNumber: 5 });
  });

  it('encodes one proof as anchor and several as anchorBatch', () => {
    const c = client();
    const item = (i: number) => ({
      proof: { gateway: c.address, intervalStart: i, intervalEnd: i + 1, count: 0, root: `0x${'00'.repeat(32)}` as Hex, importWh: 0, exportWh: 0 },
      signature: `0x${'00'.repeat(65)}` as Hex,
    });
    expect(c.anchorCalldata([item(1)]).slice(0, 10)).toBe(toFunctionSelector('anchor((address,uint64,uint64,uint32,bytes32,uint64,uint64),bytes)'));
    expect(c.anchorCalldata([item(1), item(2)]).slice(0, 10)).toBe(
      toFunctionSelector('anchorBatch((address,uint64,uint64,uint32,bytes32,uint64,uint64)[],bytes[])'),
    );
    expect(() => c.anchorCalldata([])).toThrow(RangeError);
  });
});
