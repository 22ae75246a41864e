/**
 * createSunSpecDevice: discovery (unless given), identity from the common model, then the device
 * class on top. The agent calls it again after a permanent failure (the device may have changed).
 */
import type { Battery, DeviceClass, Meter, Pv } from '../classes.js';
import { NotSupportedError } from '../errors.js';
import type { Log } from '../log.js';
import type { ModbusUnit } from '../modbus/types.js';
import { SunSpecBattery } from './battery.js';
import type { SunSpecDiscovery } from './discovery.js';
import { SunSpecMeter } from './meter.js';
import { SunSpecPv } from './pv.js';
import { SunSpecSession } from './session.js';

export type SunSpecDeviceClass = 'meter' | 'pv' | 'battery';
export const SUNSPEC_DEVICE_CLASSES: readonly SunSpecDeviceClass[] = ['meter', 'pv', 'battery'];

export interface SunSpecDeviceOptions {
  id: string;
  deviceClass: DeviceClass;
  unit: ModbusUnit;
  log: Log;
  /** A discovery already made (e.g. by a scan); skips the search. */
  discovery?: SunSpecDiscovery;
  /** Look for "SunS" only at this address (config: sunspec.baseAddress). */
  baseAddress?: number;
  /** Batteries with only an Ah rating (model 120 AhrRtg): nominal voltage to compute capacityWh. */
  nominalVoltageV?: number;
}

export function createSunSpecDevice(options: SunSpecDeviceOptions & { deviceClass: 'meter' }): Promise<Meter>;
export function createSunSpecDevice(options: SunSpecDeviceOptions & { deviceClass: 'pv' }): Promise<Pv>;
export function createSunSpecDevice(options: SunSpecDeviceOptions & { deviceClass: 'battery' }): Promise<Battery>;
export function createSunSpecDevice(options: SunSpecDeviceOptions): Promise<Meter | Pv | Battery>;
/**
 * Rejects with NotSupportedError when the unit has no SunSpec map, lacks the models the class
 * needs, or the class is not one SunSpec covers; with BadDataError when the map is broken or a used
 * model has a length its definition does not allow; with the transport's errors (timeout,
 * disconnected) unchanged.
 */
export async function createSunSpecDevice(options: SunSpecDeviceOptions): Promise<Meter | Pv | Battery> {
  const { deviceClass } = options;
  if (!SUNSPEC_DEVICE_CLASSES.includes(deviceClass as SunSpecDeviceClass)) {
    throw new NotSupportedError(`${options.id}: the sunspec driver drives ${SUNSPEC_DEVICE_CLASSES.join(', ')}, not ${deviceClass}`);
  }
  const log = options.log.child({ device: options.id, driver: 'sunspec' });
  const session = await SunSpecSession.open({
    id: options.id,
    unit: options.unit,
    log,
    ...(options.discovery ? { discovery: options.discovery } : {}),
    ...(options.baseAddress !== undefined ? { baseAddress: options.baseAddress } : {}),
  });
  let device: Meter | Pv | Battery;
  switch (deviceClass as SunSpecDeviceClass) {
    case 'meter':
      device = new SunSpecMeter(session);
      break;
    case 'pv':
      device = new SunSpecPv(session);
      break;
    case 'battery':
      device = new SunSpecBattery(session, options.nominalVoltageV !== undefined ? { nominalVoltageV: options.nominalVoltageV } : {});
      break;
  }
  log.info({ description: device.describe(), baseAddress: session.discovery.baseAddress }, 'SunSpec device ready');
  return device;
}
