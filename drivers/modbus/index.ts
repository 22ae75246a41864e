/** The Modbus transport: buses, units, read coalescing. See README.md. */
export {
  createModbusBus,
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_RECONNECT,
  DEFAULT_RTU_QUIET_MS,
  DEFAULT_TIMEOUT_MS,
  DEFAULT_UNIT_BACKOFF,
  MAX_WRITE_REGISTERS,
} from './bus.js';
export { joinsInside, MAX_READ_REGISTERS, planReads, sliceRanges, type PlanOptions, type ReadBlock } from './plan.js';
export type * from './types.js';
