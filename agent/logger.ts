/**
 * The one structured logger: pino, JSON lines, one child per module (`module`) and per device
 * (`device`). The daemon logs to stderr (journald on a Pi picks it up); the demo logs to a file so
 * the live view owns the terminal.
 */
import { pino, type Logger } from 'pino';
import type { Log } from '../drivers/log.js';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';

export function createLogger(options: { level: LogLevel; file?: string }): Logger & Log {
  const destination = options.file ? pino.destination({ dest: options.file, mkdir: true, sync: false }) : pino.destination(2);
  return pino({ level: options.level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime }, destination);
}
