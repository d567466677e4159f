/**
 * The one price table of the LLM judge: what a build's tokens cost. Per model, in US
 * dollars per million tokens (input, cached input, output); the Batch API costs
 * `batchMultiplier` of that. Prices change: the table says when they were taken, and
 * a setting (SFT_JUDGE_PRICES) or flag (--judge-prices) overrides or extends it.
 */
import { z } from 'zod';
import { PricesSchema, type Prices } from './usage';
import { PermanentError } from '../errors';

/** When the table below was taken from the providers' pages. */
export const PRICES_AS_OF = '2025-08-15';
export const PRICES_CURRENCY = 'USD';
export const PRICES_NOTE = `prices as of ${PRICES_AS_OF}, check the provider's page (openai.com/api/pricing, Azure OpenAI pricing)`;

const p = (inputPerMTok: number, cachedInputPerMTok: number, outputPerMTok: number): Prices => ({
  inputPerMTok,
  cachedInputPerMTok,
  outputPerMTok,
  batchMultiplier: 0.5,
});

/**
 * OpenAI list prices (Azure OpenAI Global Standard charges the same for these models).
 * A model matches its longest key that is a prefix of it: `gpt-4o-mini-2024-07-18`
 * (an Azure deployment's model and version) is priced as `gpt-4o-mini`.
 */
export const PRICE_TABLE: Readonly<Record<string, Prices>> = {
  'gpt-4o': p(2.5, 1.25, 10),
  'gpt-4o-mini': p(0.15, 0.075, 0.6),
  'gpt-4.1': p(2, 0.5, 8),
  'gpt-4.1-mini': p(0.4, 0.1, 1.6),
  'gpt-4.1-nano': p(0.1, 0.025, 0.4),
  'gpt-5': p(1.25, 0.125, 10),
  'gpt-5-mini': p(0.25, 0.025, 2),
  'gpt-5-nano': p(0.05, 0.005, 0.4),
  o3: p(2, 0.5, 8),
  'o3-mini': p(1.1, 0.55, 4.4),
  'o4-mini': p(1.1, 0.275, 4.4),
};

/** A table override: model (prefix) → prices, over PRICE_TABLE. */
export const PriceTableSchema = z.record(z.string().min(1), PricesSchema);
export type PriceTable = z.infer<typeof PriceTableSchema>;

export class PriceTableError extends PermanentError {}

/** Parses SFT_JUDGE_PRICES / --judge-prices: `{"MODEL": {"inputPerMTok": ..., ...}, ...}`. */
export function parsePriceTable(text: string, where = 'SFT_JUDGE_PRICES'): PriceTable {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    throw new PriceTableError(`${where}: not JSON (${(cause as Error).message})`, { cause });
  }
  const parsed = PriceTableSchema.safeParse(json);
  if (!parsed.success) {
    const i = parsed.error.issues[0]!;
    throw new PriceTableError(`${where}: ${i.path.join('.') || 'table'}: ${i.message}`);
  }
  return parsed.data;
}

export interface PriceChoice {
  prices: Prices;
  /** The table key that matched, "settings" for prices given with the judge, null: unknown model. */
  source: string | null;
  asOf: string | null;
}

/**
 * The prices of `model` (its first name that matches): explicit prices win, then the
 * override table, then PRICE_TABLE; an unknown model costs 0 with `source` null (the
 * manifest then says the cost is unknown rather than free).
 */
export function pricesFor(
  models: readonly (string | undefined)[],
  opts: { explicit?: Prices; overrides?: PriceTable } = {},
): PriceChoice {
  if (opts.explicit) return { prices: opts.explicit, source: 'settings', asOf: null };
  for (const model of models) {
    if (!model) continue;
    const m = model.toLowerCase();
    for (const [table, asOf] of [
      [opts.overrides ?? {}, null],
      [PRICE_TABLE, PRICES_AS_OF],
    ] as const) {
      const key = Object.keys(table)
        .filter((k) => m === k.toLowerCase() || m.startsWith(`${k.toLowerCase()}-`))
        .sort((a, b) => b.length - a.length)[0];
      if (key) return { prices: table[key]!, source: key, asOf };
    }
  }
  return { prices: PricesSchema.parse({}), source: null, asOf: null };
}

/** How a build's cost was priced, for the manifest, the status and the report. */
export interface Pricing {
  currency: string;
  /** The price table row used ("settings": prices given with the judge); null: unknown model, cost not estimated. */
  source: string | null;
  asOf: string | null;
  batch: boolean;
  inputPerMTok: number;
  cachedInputPerMTok: number;
  outputPerMTok: number;
  batchMultiplier: number;
  note: string;
}

export function pricingOf(choice: PriceChoice, batch: boolean): Pricing {
  return {
    currency: PRICES_CURRENCY,
    source: choice.source,
    asOf: choice.asOf,
    batch,
    ...choice.prices,
    note:
      choice.source === null
        ? 'no price for this model: give SFT_JUDGE_PRICES or --judge-prices'
        : choice.asOf
          ? PRICES_NOTE
          : 'prices from the settings',
  };
}

/** Tokens and estimated cost of a build, as the manifest, the status and the report show them. */
export interface CostSection {
  promptTokens: number;
  cachedTokens: number;
  completionTokens: number;
  estimatedCost: number;
  currency: string;
  /** How it was priced (the model's row, its date, sync or Batch API); null: not an LLM judge. */
  pricing: Pricing | null;
  byWave?: {
    wave: number;
    promptTokens: number;
    cachedTokens: number;
    completionTokens: number;
    estimatedCost: number;
  }[];
}

export function costSection(
  usage: {
    promptTokens: number;
    cachedTokens: number;
    completionTokens: number;
    estimatedCost: number;
  },
  pricing: Pricing | undefined,
  byWave?: CostSection['byWave'],
): CostSection {
  return {
    promptTokens: usage.promptTokens,
    cachedTokens: usage.cachedTokens,
    completionTokens: usage.completionTokens,
    estimatedCost: Math.round(usage.estimatedCost * 1e6) / 1e6,
    currency: PRICES_CURRENCY,
    pricing: pricing ?? null,
    ...(byWave && byWave.length > 0 ? { byWave } : {}),
  };
}
