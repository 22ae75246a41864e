/**
 * The SunSpec model definitions this driver knows, imported as JSON modules so that tsc copies them
 * into dist/ and the compiled daemon works without the source tree. The files are the SunSpec
 * Alliance's (Apache-2.0, see LICENSE in this folder), unchanged. Definitions are validated on first use.
 */
import { parseModelDef, type ModelDef } from '../model-def.js';
import model1 from './model_1.json' with { type: 'json' };
import model101 from './model_101.json' with { type: 'json' };
import model102 from './model_102.json' with { type: 'json' };
import model103 from './model_103.json' with { type: 'json' };
import model111 from './model_111.json' with { type: 'json' };
import model112 from './model_112.json' with { type: 'json' };
import model113 from './model_113.json' with { type: 'json' };
import model120 from './model_120.json' with { type: 'json' };
import model121 from './model_121.json' with { type: 'json' };
import model122 from './model_122.json' with { type: 'json' };
import model123 from './model_123.json' with { type: 'json' };
import model124 from './model_124.json' with { type: 'json' };
import model160 from './model_160.json' with { type: 'json' };
import model201 from './model_201.json' with { type: 'json' };
import model202 from './model_202.json' with { type: 'json' };
import model203 from './model_203.json' with { type: 'json' };
import model204 from './model_204.json' with { type: 'json' };
import model701 from './model_701.json' with { type: 'json' };
import model702 from './model_702.json' with { type: 'json' };
import model703 from './model_703.json' with { type: 'json' };
import model704 from './model_704.json' with { type: 'json' };
import model705 from './model_705.json' with { type: 'json' };
import model707 from './model_707.json' with { type: 'json' };
import model711 from './model_711.json' with { type: 'json' };
import model712 from './model_712.json' with { type: 'json' };
import model713 from './model_713.json' with { type: 'json' };
import model714 from './model_714.json' with { type: 'json' };
import model715 from './model_715.json' with { type: 'json' };
import model802 from './model_802.json' with { type: 'json' };
import model803 from './model_803.json' with { type: 'json' };

const RAW_MODELS: ReadonlyMap<number, unknown> = new Map<number, unknown>([
  [1, model1],
  [101, model101],
  [102, model102],
  [103, model103],
  [111, model111],
  [112, model112],
  [113, model113],
  [120, model120],
  [121, model121],
  [122, model122],
  [123, model123],
  [124, model124],
  [160, model160],
  [201, model201],
  [202, model202],
  [203, model203],
  [204, model204],
  [701, model701],
  [702, model702],
  [703, model703],
  [704, model704],
  [705, model705],
  [707, model707],
  [711, model711],
  [712, model712],
  [713, model713],
  [714, model714],
  [715, model715],
  [802, model802],
  [803, model803],
]);

const parsed = new Map<number, ModelDef>();

/** Ids of all models with a definition here, ascending. */
export const KNOWN_MODEL_IDS: readonly number[] = [...RAW_MODELS.keys()].sort((a, b) => a - b);

/** The definition of model `id`, or undefined when this driver does not know it. */
export function findModelDef(id: number): ModelDef | undefined {
  const cached = parsed.get(id);
  if (cached) return cached;
  const raw = RAW_MODELS.get(id);
  if (raw === undefined) return undefined;
  const def = parseModelDef(raw);
  if (def.id !== id) throw new Error(`models/model_${id}.json declares id ${def.id}`);
  parsed.set(id, def);
  return def;
}

/** The definition of model `id`; throws when it is unknown (a programming error, not a device error). */
export function getModelDef(id: number): ModelDef {
  const def = findModelDef(id);
  if (!def) throw new Error(`no SunSpec definition for model ${id}`);
  return def;
}
