/**
 * L2-regularised logistic regression on sparse rows, trained by AdaGrad SGD.
 *
 * Deterministic: the rows are visited in an order fixed by the seed (a seeded shuffle
 * per epoch of rows first sorted by a hash of their id), so the same data and seed give
 * the same weights on every run, whatever the order of the input lines.
 * The L2 penalty is applied to the weights a row touches, when it touches them (the
 * usual lazy form for hashed features); the intercept is not penalised.
 */
import { Rng } from '../util/prng';
import type { SparseRows } from './features';

export interface LogisticSettings {
  epochs: number;
  learningRate: number;
  /** L2 strength per sample (λ in mean loss + λ/2 ‖w‖²). */
  lambda: number;
  seed: number;
}

export interface LogisticModel {
  weights: Float64Array;
  bias: number;
}

const sigmoid = (z: number) => (z >= 0 ? 1 / (1 + Math.exp(-z)) : Math.exp(z) / (1 + Math.exp(z)));

/**
 * Trains on the rows listed in `order` (already in a stable order) with targets `y`
 * (1 = positive) indexed by row.
 */
export function trainLogistic(
  x: SparseRows,
  y: Uint8Array,
  order: Int32Array,
  s: LogisticSettings,
): LogisticModel {
  const w = new Float64Array(x.dim);
  const g2 = new Float64Array(x.dim);
  let b = 0;
  let gb2 = 0;
  const eps = 1e-8;
  const { ptr, indices, values } = x;
  const rows = Int32Array.from(order);
  const rng = new Rng(s.seed >>> 0);
  for (let epoch = 0; epoch < s.epochs; epoch++) {
    for (let i = rows.length - 1; i > 0; i--) {
      const j = Math.floor(rng.next() * (i + 1));
      const t = rows[i]!;
      rows[i] = rows[j]!;
      rows[j] = t;
    }
    for (let k = 0; k < rows.length; k++) {
      const r = rows[k]!;
      const start = ptr[r]!;
      const end = ptr[r + 1]!;
      let z = b;
      for (let p = start; p < end; p++) z += w[indices[p]!]! * values[p]!;
      const err = sigmoid(z) - y[r]!;
      for (let p = start; p < end; p++) {
        const j = indices[p]!;
        const g = err * values[p]! + s.lambda * w[j]!;
        const acc = g2[j]! + g * g;
        g2[j] = acc;
        w[j]! -= (s.learningRate * g) / (Math.sqrt(acc) + eps);
      }
      gb2 += err * err;
      b -= (s.learningRate * err) / (Math.sqrt(gb2) + eps);
    }
  }
  return { weights: w, bias: b };
}

/** P(positive) for each row of `x` listed in `rows`. */
export function predict(x: SparseRows, m: LogisticModel, rows: ArrayLike<number>): Float64Array {
  const out = new Float64Array(rows.length);
  const { ptr, indices, values } = x;
  for (let k = 0; k < rows.length; k++) {
    const r = rows[k]!;
    let z = m.bias;
    for (let p = ptr[r]!; p < ptr[r + 1]!; p++) z += m.weights[indices[p]!]! * values[p]!;
    out[k] = sigmoid(z);
  }
  return out;
}
