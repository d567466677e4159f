/**
 * Quotas across strata within one class: the seed's Strategy 1 "equal representation"
 * and its alternatives, with a short stratum's share redistributed to the others.
 */
import type { Allocation } from '../contracts/config';

/** Per-stratum weights for an allocation mode, given each stratum's supply. */
export function allocationWeights(mode: Allocation, supply: readonly number[]): number[] {
  switch (mode) {
    case 'equal':
      return supply.map(() => 1);
    case 'proportional':
      return supply.map((s) => s);
    case 'inverse-frequency':
      return supply.map((s) => (s > 0 ? 1 / s : 0));
  }
}

/**
 * Water-filling: the level λ at which Σ min(supply_i, λ·w_i) = n, or Infinity when
 * the supply cannot fill n. Also returns which strata are saturated (take all they have).
 */
export function waterLevel(
  n: number,
  supply: readonly number[],
  weight: readonly number[],
): { level: number; saturated: boolean[] } {
  const saturated = supply.map(() => false);
  const total = supply.reduce((a, b) => a + b, 0);
  if (total <= n) return { level: Infinity, saturated: supply.map(() => true) };
  const order = supply
    .map((_, i) => i)
    .filter((i) => (weight[i] ?? 0) > 0)
    .sort((a, b) => supply[a]! / weight[a]! - supply[b]! / weight[b]! || a - b);
  let remaining = n;
  let activeWeight = order.reduce((a, i) => a + weight[i]!, 0);
  for (const i of order) {
    const level = remaining / activeWeight;
    if (supply[i]! <= level * weight[i]!) {
      saturated[i] = true;
      remaining -= supply[i]!;
      activeWeight -= weight[i]!;
    } else {
      break;
    }
  }
  return { level: activeWeight > 0 ? remaining / activeWeight : Infinity, saturated };
}

/**
 * Integer quotas summing to min(n, Σ supply): q_i = min(supply_i, λ·w_i), rounded by
 * largest remainder (ties to the lower index) so the total is exact and deterministic.
 */
export function allocate(
  n: number,
  supply: readonly number[],
  weight: readonly number[],
): number[] {
  const { level, saturated } = waterLevel(n, supply, weight);
  if (level === Infinity) return supply.slice();
  const quota = supply.map((s, i) => (saturated[i] ? s : Math.floor(level * weight[i]!)));
  let rest = n - quota.reduce((a, b) => a + b, 0);
  const fractional = supply
    .map((_, i) => i)
    .filter((i) => !saturated[i] && (weight[i] ?? 0) > 0)
    .sort((a, b) => {
      const fa = level * weight[a]! - quota[a]!;
      const fb = level * weight[b]! - quota[b]!;
      return fb - fa || a - b;
    });
  for (const i of fractional) {
    if (rest <= 0) break;
    if (quota[i]! < supply[i]!) {
      quota[i]! += 1;
      rest -= 1;
    }
  }
  return quota;
}

/** What each stratum would get with unlimited supply: n·w_i / Σw. */
export function nominalShares(n: number, weight: readonly number[]): number[] {
  const w = weight.reduce((a, b) => a + b, 0);
  return weight.map((x) => (w > 0 ? (n * x) / w : 0));
}
