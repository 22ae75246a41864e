/**
 * `flexgate start`: the agent on a real home, until SIGINT/SIGTERM. A second signal exits at once.
 */
import type { Config } from './config/schema.js';
import { Agent } from './agent.js';
import { createLogger } from './logger.js';
import { VERSION } from './version.js';

export async function runDaemon(config: Config, configFile: string): Promise<number> {
  const log = createLogger({ level: config.log.level });
  const controller = new AbortController();
  const agent = new Agent({ config, log });
  let signals = 0;
  const onSignal = (name: string) => {
    signals++;
    if (signals > 1) {
      log.warn({ signal: name }, 'second signal: exiting now');
      process.exit(130);
    }
    log.info({ signal: name }, 'stopping');
    controller.abort(new Error(`received ${name}`));
  };
  process.on('SIGINT', () => onSignal('SIGINT'));
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  log.info({ version: VERSION, config: configFile, gateway: config.gateway.name }, 'flexgate starting');
  try {
    await agent.start(controller.signal);
  } catch (err) {
    log.fatal({ err }, 'agent could not start');
    process.stderr.write(`flexgate: could not start: ${err instanceof Error ? err.message : String(err)}\n`);
    await agent.stop().catch(() => undefined);
    log.flush();
    return 1;
  }
  await new Promise<void>((resolve) => controller.signal.addEventListener('abort', () => resolve(), { once: true }));
  await agent.stop();
  log.flush();
  return 0;
}
