/** Small seeded pseudo-random generators (mulberry32), so a simulation is the same for the same seed. */

/** Returns a function giving uniform numbers in [0, 1), deterministic for `seed`. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A uniform number in [0, 1) that depends only on (seed, index): noise addressable by time slot. */
export function hashNoise(seed: number, index: number): number {
  let h = (Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(index | 0, 0x85ebca6b)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d) >>> 0;
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b) >>> 0;
  h = (h ^ (h >>> 16)) >>> 0;
  return h / 4294967296;
}

/** Noise that moves smoothly: linear interpolation of hashNoise between slots of `slotMs`. */
export function smoothNoise(seed: number, timeMs: number, slotMs: number): number {
  const x = timeMs / slotMs;
  const i = Math.floor(x);
  const f = x - i;
  return hashNoise(seed, i) * (1 - f) + hashNoise(seed, i + 1) * f;
}
