import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BaseError,
  ContractFunctionRevertedError,
  createPublicClient,
  createWalletClient,
  http,
  zeroAddress,
  type Account,
  type Address,
  type Chain,
  type Hex,
  type PublicClient,
  type Transport,
  type WalletClient,
} from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { startAnvil, type Anvil } from '../anvil.js';
import { abi, bytecode } from './generated/Registry.js';

describe('Registry on anvil', () => {
  let anvil: Anvil;
  let publicClient: PublicClient;
  let wallets: Array<WalletClient<Transport, Chain, Account>>;
  let registry: Address;

  beforeAll(async () => {
    anvil = await startAnvil();
    publicClient = createPublicClient({ chain: anvil.chain, transport: http(anvil.rpcUrl) });
    wallets = anvil.privateKeys.slice(0, 4).map((key) =>
      createWalletClient({ account: privateKeyToAccount(key as Hex), chain: anvil.chain, transport: http(anvil.rpcUrl) }),
    );
    const receipt = await publicClient.waitForTransactionReceipt({ hash: await wallet(0).deployContract({ abi, bytecode }) });
    registry = receipt.contractAddress as Address;
  });
  afterAll(async () => {
    await anvil?.stop();
  });

  const wallet = (i: number) => wallets[i] as WalletClient<Transport, Chain, Account>;
  const addr = (i: number) => wallet(i).account.address;
  const read = (functionName: 'isAggregator' | 'isGateway', who: Address) =>
    publicClient.readContract({ address: registry, abi, functionName, args: [who] });

  /** What a call from dev account `i` to the registry needs, for spreading into viem calls. */
  const from = (i: number) => ({ account: wallet(i).account, address: registry, abi });
  async function mined(hash: Promise<Hex>) {
    const receipt = await publicClient.waitForTransactionReceipt({ hash: await hash });
    expect(receipt.status).toBe('success');
    return receipt;
  }
  async function revertName(call: Promise<unknown>): Promise<string> {
    try {
      await call;
    } catch (err) {
      const reverted = err instanceof BaseError ? err.walk((e) => e instanceof ContractFunctionRevertedError) : undefined;
      if (reverted instanceof ContractFunctionRevertedError && reverted.data) return reverted.data.errorName;
      throw err;
    }
    throw new Error('did not revert');
  }
  const admit = (i: number, who: Address) => publicClient.simulateContract({ ...from(i), functionName: 'admitAggregator', args: [who] });
  const remove = (i: number, who: Address) => publicClient.simulateContract({ ...from(i), functionName: 'removeAggregator', args: [who] });

  it('makes the deployer the operator', async () => {
    expect(await publicClient.readContract({ address: registry, abi, functionName: 'operator' })).toBe(addr(0));
  });

  it('lets only the operator admit and remove aggregators, with events', async () => {
    const agg = addr(1);
    expect(await read('isAggregator', agg)).toBe(false);
    expect(await revertName(admit(2, agg))).toBe('NotOperator');
    expect(await revertName(admit(0, zeroAddress))).toBe('ZeroAddress');

    const admitted = await mined(wallet(0).writeContract({ ...from(0), functionName: 'admitAggregator', args: [agg] }));
    expect(await read('isAggregator', agg)).toBe(true);
    const admittedEvents = await publicClient.getContractEvents({ address: registry, abi, eventName: 'AggregatorAdmitted', blockHash: admitted.blockHash });
    expect(admittedEvents.map((e) => e.args)).toEqual([{ aggregator: agg }]);
    expect(await revertName(admit(0, agg))).toBe('AlreadyAggregator');

    expect(await revertName(remove(1, agg))).toBe('NotOperator');
    const removed = await mined(wallet(0).writeContract({ ...from(0), functionName: 'removeAggregator', args: [agg] }));
    expect(await read('isAggregator', agg)).toBe(false);
    const removedEvents = await publicClient.getContractEvents({ address: registry, abi, eventName: 'AggregatorRemoved', blockHash: removed.blockHash });
    expect(removedEvents.map((e) => e.args)).toEqual([{ aggregator: agg }]);
    expect(await revertName(remove(0, agg))).toBe('NotAggregator');
  });

  it('lets a gateway register itself once, with an event', async () => {
    const gw = addr(3);
    expect(await read('isGateway', gw)).toBe(false);
    const receipt = await mined(wallet(3).writeContract({ ...from(3), functionName: 'registerGateway' }));
    expect(await read('isGateway', gw)).toBe(true);
    expect(await read('isAggregator', gw)).toBe(false);
    const events = await publicClient.getContractEvents({ address: registry, abi, eventName: 'GatewayRegistered', blockHash: receipt.blockHash });
    expect(events.map((e) => e.args)).toEqual([{ gateway: gw }]);
    expect(await revertName(publicClient.simulateContract({ ...from(3), functionName: 'registerGateway' }))).toBe('AlreadyRegistered');
    expect(await read('isGateway', addr(2))).toBe(false);
  });
});
