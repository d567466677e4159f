/**
 * Split shares "train,validation,test": three non-negative numbers summing to 1
 * (within 1e-9), e.g. "0.9,0.05,0.05". A bad value is a usage error naming the flag
 * or field it came from.
 */
import { z } from 'zod';
import { PermanentError } from '../errors';

export const SPLITS = ['train', 'validation', 'test'] as const;
export type SplitName = (typeof SPLITS)[number];
export type Shares = readonly [number, number, number];

/** Bad split shares: permanent; `flag` is the flag or field the value came from. */
export class SplitSharesError extends PermanentError {
  constructor(
    readonly flag: string,
    message: string,
  ) {
    super(message);
  }
}

const SUM_TOLERANCE = 1e-9;

export const sharesSchema = z
  .tuple([z.number().min(0), z.number().min(0), z.number().min(0)])
  .refine((s) => Math.abs(s[0] + s[1] + s[2] - 1) <= SUM_TOLERANCE, {
    message: 'shares must sum to 1',
  });

/** Checks three shares; throws SplitSharesError naming `flag`. */
export function checkShares(shares: readonly number[], flag = '--split'): Shares {
  const bad = (why: string) =>
    new SplitSharesError(
      flag,
      `${flag}: ${why}; expected train,validation,test shares such as 0.9,0.05,0.05`,
    );
  if (shares.length !== 3) throw bad(`expected 3 shares, got ${shares.length}`);
  for (const s of shares) {
    if (!Number.isFinite(s)) throw bad(`${String(s)} is not a number`);
    if (s < 0) throw bad(`${s} is negative`);
  }
  const sum = shares[0]! + shares[1]! + shares[2]!;
  if (Math.abs(sum - 1) > SUM_TOLERANCE) throw bad(`shares sum to ${sum}, not 1`);
  return [shares[0]!, shares[1]!, shares[2]!];
}

/** Parses "0.9,0.05,0.05"; throws SplitSharesError naming `flag` on anything else. */
export function parseShares(text: string, flag = '--split'): Shares {
  const parts = text.split(',').map((p) => p.trim());
  const values = parts.map((p) => {
    // Number('') is 0 and Number('0x1') is 1: accept plain decimals only.
    if (!/^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(p)) {
      throw new SplitSharesError(
        flag,
        `${flag}: ${JSON.stringify(p)} is not a number; expected train,validation,test shares such as 0.9,0.05,0.05`,
      );
    }
    return Number(p);
  });
  return checkShares(values, flag);
}
