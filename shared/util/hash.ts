/**
 * Pure, dependency-free hashing for sampling keys and fingerprints.
 *
 * The core may not import node:crypto (it must run anywhere, and stay free of I/O
 * modules), and sampling needs only a well-mixed, stable 64-bit value, not a
 * cryptographic one. cyrb53's two 32-bit lanes give that in one pass over the string.
 */

/** Two 32-bit lanes of a cyrb53-style hash of `text`, seeded by `seed` (a 32-bit integer). */
export function hash64(text: string, seed = 0): [number, number] {
  let h1 = 0xdeadbeef ^ seed;
  let h2 = 0x41c6ce57 ^ seed;
  const n = text.length;
  // Two UTF-16 units a step: half the multiplications of cyrb53's one-unit loop.
  let i = 0;
  for (; i + 1 < n; i += 2) {
    const w = text.charCodeAt(i) | (text.charCodeAt(i + 1) << 16);
    h1 = Math.imul(h1 ^ w, 2654435761);
    h2 = Math.imul(h2 ^ w, 1597334677);
  }
  if (i < n) {
    const w = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ w, 2654435761);
    h2 = Math.imul(h2 ^ w, 1597334677);
  }
  // The length tells "a" from "a\u0000", which pack to the same last word.
  h1 ^= n;
  h2 ^= n;
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507);
  h1 ^= Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507);
  h2 ^= Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return [h1 >>> 0, h2 >>> 0];
}

/** A uniform number in [0, 1) derived from `text` and `seed`, with 53 bits of precision. */
export function unitHash(text: string, seed = 0): number {
  const [h1, h2] = hash64(text, seed);
  // 32 bits of h1 and 21 of h2: exactly representable, never 1.
  return (h1 * 2 ** 21 + (h2 >>> 11)) / 2 ** 53;
}

/** Folds an arbitrary seed (number or string) into the 32-bit seed the hashes take. */
export function seed32(seed: number | string): number {
  return hash64(String(seed), 0x9e3779b9)[0];
}

/** A 16-hex-digit fingerprint of `text`: equal texts, equal fingerprints. */
export function fingerprint(text: string): string {
  const [h1, h2] = hash64(text, 0x5f3759df);
  return h1.toString(16).padStart(8, '0') + h2.toString(16).padStart(8, '0');
}
