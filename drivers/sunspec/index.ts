/** SunSpec: discovery, model decoding/encoding and the meter, pv and battery classes on top. */
export { createSunSpecDevice, SUNSPEC_DEVICE_CLASSES, type SunSpecDeviceClass, type SunSpecDeviceOptions } from './device.js';
export {
  discoverSunSpec,
  DEFAULT_BASES,
  SUNS_MARKER,
  type DiscoveredModel,
  type DiscoverOptions,
  type SunSpecDiscovery,
} from './discovery.js';
export {
  decodeModel,
  decodeModelPrefix,
  encodePoint,
  isAllowedLength,
  type DecodedGroup,
  type DecodedModel,
  type EncodedPoint,
  type PointValue,
  type ScaleFactors,
} from './codec.js';
export { parseModelDef, type GroupDef, type ModelDef, type PointDef, type PointType } from './model-def.js';
export { findModelDef, getModelDef, KNOWN_MODEL_IDS } from './models/index.js';
export { scanUnits, scanUnit, suggestClasses, suggestConfig, type ScanResult, type SuggestedDevice } from './scan.js';
export type { SunSpecIdentity } from './session.js';
