/** The rows crash-writer.ts writes, shared with crash.test.ts (test support, not library code). */
export const crashDevices = ['meter', 'pv', 'battery', 'ev', 'heatpump'] as const;
export const crashMetrics = ['powerW', 'energyWh'] as const;
/** 5 devices × 2 metrics per timestamp; the value is derived from the time so it can be checked. */
export const crashValue = (tsMs: number, device: number, metric: number): number => tsMs * 10 + device * 2 + metric;
