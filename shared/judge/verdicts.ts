/**
 * Reading an LLM's answer: strict JSON, validated by zod per verdict, so one bad
 * verdict (a label of 2, a duplicated id) costs only its own sample a re-ask. An
 * answer that does not parse is never turned into a label.
 */
import { z } from 'zod';
import { LabelSchema, type Label } from '../contracts/rows';

export const VerdictItemSchema = z.object({
  id: z.string().min(1),
  label: LabelSchema,
  /** Cosmetic: an over-long rationale is cut, not worth a re-ask. */
  rationale: z.string().transform((r) => (r.length > 300 ? `${r.slice(0, 299)}…` : r)),
});

export const VerdictResponseSchema = z.object({ verdicts: z.array(z.unknown()) });

/** One output token with its log probability and the alternatives the provider gave. */
export interface TokenLogprob {
  token: string;
  logprob: number;
  top?: readonly { token: string; logprob: number }[];
}

export interface ParsedVerdict {
  label: Label;
  rationale: string;
  confidence?: number;
}

export interface ParseResult {
  /** Verdicts accepted, by request id. */
  ok: Map<string, ParsedVerdict>;
  /** Request ids that got no usable verdict, with the cause. */
  problems: Map<string, string>;
  /** Ids in the answer that were not asked about (ignored). */
  extra: string[];
  /** Set when the whole answer is unusable (not JSON, wrong shape). */
  fatal?: string;
}

const short = (s: string, n = 120) => (s.length > n ? `${s.slice(0, n)}…` : s);

/**
 * Parses an answer for the request ids `ids`. Each id must appear exactly once with a
 * label of 0 or 1; anything else is a problem for that id, never a guess.
 */
export function parseVerdicts(
  text: string | null | undefined,
  ids: readonly string[],
  logprobs?: readonly TokenLogprob[] | null,
): ParseResult {
  const ok = new Map<string, ParsedVerdict>();
  const problems = new Map<string, string>();
  const extra: string[] = [];
  const failAll = (fatal: string): ParseResult => {
    for (const id of ids) problems.set(id, fatal);
    return { ok, problems, extra, fatal };
  };
  if (text === null || text === undefined || text.trim() === '') {
    return failAll('unparseable verdict: empty answer');
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return failAll(`unparseable verdict: not JSON (${short(JSON.stringify(text))})`);
  }
  const shape = VerdictResponseSchema.safeParse(value);
  if (!shape.success) return failAll('unparseable verdict: no "verdicts" array');
  let confidences = labelConfidences(text, logprobs);
  // A verdict without a label key would shift the mapping: then no confidences at all.
  if (confidences.length !== shape.data.verdicts.length) confidences = [];
  const asked = new Set(ids);
  const seen = new Map<string, number>();
  const candidates = new Map<string, ParsedVerdict>();
  shape.data.verdicts.forEach((raw, position) => {
    const rawId = (raw as { id?: unknown } | null)?.id;
    const id = typeof rawId === 'string' ? rawId : undefined;
    if (id === undefined || !asked.has(id)) {
      if (id !== undefined) extra.push(id);
      return;
    }
    seen.set(id, (seen.get(id) ?? 0) + 1);
    const item = VerdictItemSchema.safeParse(raw);
    if (!item.success) {
      const label = (raw as { label?: unknown }).label;
      problems.set(
        id,
        label !== 0 && label !== 1
          ? `invalid verdict: label ${short(JSON.stringify(label) ?? 'missing', 20)} is not 0 or 1`
          : `invalid verdict: ${item.error.issues[0]?.path.join('.') ?? ''} ${item.error.issues[0]?.message ?? ''}`.trim(),
      );
      return;
    }
    const v: ParsedVerdict = { label: item.data.label, rationale: item.data.rationale };
    const c = confidences[position];
    if (c !== undefined) v.confidence = c;
    candidates.set(id, v);
  });
  for (const id of ids) {
    const n = seen.get(id) ?? 0;
    if (n === 0) problems.set(id, 'invalid verdict: id missing from the answer');
    else if (n > 1) problems.set(id, `invalid verdict: id given ${n} times`);
    else if (!problems.has(id)) ok.set(id, candidates.get(id)!);
  }
  return { ok, problems, extra };
}

/**
 * Character offsets of each verdict's label digit in a JSON answer, in order: the
 * number after a `"label":` key outside any string. Text inside strings (a rationale
 * quoting `"label": 1`) has its quotes escaped and is skipped.
 */
export function labelOffsets(text: string): number[] {
  const out: number[] = [];
  let i = 0;
  let lastString: string | null = null;
  let afterColon = false;
  while (i < text.length) {
    const ch = text[i]!;
    if (ch === '"') {
      let j = i + 1;
      let s = '';
      while (j < text.length && text[j] !== '"') {
        if (text[j] === '\\') j++;
        s += text[j] ?? '';
        j++;
      }
      lastString = s;
      afterColon = false;
      i = j + 1;
      continue;
    }
    if (ch === ':') {
      afterColon = true;
    } else if (afterColon && ch >= '0' && ch <= '9') {
      if (lastString === 'label') out.push(i);
      afterColon = false;
    } else if (ch !== ' ' && ch !== '\n' && ch !== '\t' && ch !== '\r') {
      afterColon = false;
    }
    i++;
  }
  return out;
}

/**
 * Confidence of each verdict's label from token logprobs, in verdict order: the
 * probability of the chosen digit, renormalised over the 0/1 alternatives the
 * provider listed. Empty when no logprobs were given (the confidence is then absent,
 * not invented; a model's self-reported confidence is not used).
 */
export function labelConfidences(
  text: string,
  logprobs: readonly TokenLogprob[] | null | undefined,
): (number | undefined)[] {
  if (!logprobs || logprobs.length === 0) return [];
  const offsets = labelOffsets(text);
  const starts: number[] = [];
  let pos = 0;
  for (const t of logprobs) {
    starts.push(pos);
    pos += t.token.length;
  }
  if (pos !== text.length) return []; // tokens do not spell the text: no mapping
  const out: (number | undefined)[] = [];
  let k = 0;
  for (const offset of offsets) {
    while (k + 1 < starts.length && starts[k + 1]! <= offset) k++;
    const tok = logprobs[k]!;
    const digit = text[offset]!;
    if (tok.token.trim() !== digit) {
      out.push(undefined); // the digit shares a token with other text: no clean estimate
      continue;
    }
    let chosen = Math.exp(tok.logprob);
    let total = chosen;
    for (const alt of tok.top ?? []) {
      const a = alt.token.trim();
      if ((a === '0' || a === '1') && a !== digit) total += Math.exp(alt.logprob);
    }
    if (!(total > 0)) {
      out.push(undefined);
      continue;
    }
    chosen = chosen / total;
    out.push(Math.round(Math.min(1, Math.max(0, chosen)) * 1000) / 1000);
  }
  return out;
}
