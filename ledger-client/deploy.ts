/**
 * Deploys flexgate's contracts (ProofRegistry, Registry) with a funded account, and funds other
 * accounts: what the demo and the end-to-end tests do on a fresh chain, and what an operator runs
 * once on a real one.
 */
import { createPublicClient, createWalletClient, http, parseEther, type Address, type Hex } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { abi as proofRegistryAbi, bytecode as proofRegistryBytecode } from './contracts/generated/ProofRegistry.js';
import { abi as registryAbi, bytecode as registryBytecode } from './contracts/generated/Registry.js';

export interface Deployment {
  proofs: Address;
  registry: Address;
}

function clients(rpcUrl: string, privateKey: Hex) {
  const account = privateKeyToAccount(privateKey);
  const transport = http(rpcUrl, { retryCount: 0 });
  return { account, wallet: createWalletClient({ account, transport }), reader: createPublicClient({ transport }) };
}

export async function deployContracts(rpcUrl: string, deployerKey: Hex): Promise<Deployment> {
  const { account, wallet, reader } = clients(rpcUrl, deployerKey);
  const chainId = await reader.getChainId();
  const chain = { id: chainId, name: `chain ${chainId}`, nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 }, rpcUrls: { default: { http: [rpcUrl] } } } as const;
  const deployed: Address[] = [];
  for (const [abi, bytecode] of [
    [proofRegistryAbi, proofRegistryBytecode],
    [registryAbi, registryBytecode],
  ] as const) {
    const hash = await wallet.deployContract({ abi, bytecode, account, chain });
    const receipt = await reader.waitForTransactionReceipt({ hash, pollingInterval: 50 });
    if (receipt.status !== 'success' || !receipt.contractAddress) throw new Error(`deploying a contract failed (tx ${hash})`);
    deployed.push(receipt.contractAddress);
  }
  return { proofs: deployed[0]!, registry: deployed[1]! };
}

/** Sends `ether` to `to` and waits until it is mined. */
export async function fund(rpcUrl: string, funderKey: Hex, to: Address, ether = '1'): Promise<void> {
  const { account, wallet, reader } = clients(rpcUrl, funderKey);
  const chainId = await reader.getChainId();
  const chain = { id: chainId, name: `chain ${chainId}`, nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 }, rpcUrls: { default: { http: [rpcUrl] } } } as const;
  const hash = await wallet.sendTransaction({ account, chain, to, value: parseEther(ether) });
  await reader.waitForTransactionReceipt({ hash, pollingInterval: 50 });
}
