/**
 * The probe on a written dataset, the same wherever its lines come from: read back from
 * files (cli/evaluate.ts, the in-process build) or held by the fan-in. Each line is checked
 * as the probe needs it; lines it cannot use are counted by reason, not fatal. The result
 * (probe.json) and its manifest section are built here, so the two paths give the same bytes.
 */
import { probeSummaryLines, runProbe, type ProbeResult, type ReviewItem } from './probe';
import type { ProbeLine, ProbeSettingsInput, ProbeSplits } from './types';

/** The probe's files, written beside the dataset (or to `evaluate --out`). */
export const PROBE_FILES = { result: 'probe.json', review: 'label-review.jsonl' } as const;
/** The dataset files the probe reads, by split. */
export const PROBE_SPLIT_FILES = {
  train: 'train.jsonl',
  validation: 'validation.jsonl',
  test: 'test.jsonl',
} as const;

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** Why a parsed value is not a usable dataset line, or null. */
export function probeLineProblem(v: unknown): string | null {
  if (!isObject(v)) return 'not_an_object';
  if (v.label !== 0 && v.label !== 1) return 'invalid_label';
  if (typeof v.id !== 'string') return 'missing_id';
  if (typeof v.conversationId !== 'string') return 'missing_conversationId';
  const m = v.messages;
  if (!Array.isArray(m) || m.length === 0) return 'missing_messages';
  for (const x of m) if (!isObject(x) || typeof x.content !== 'string') return 'bad_message';
  for (const f of ['turnIndex', 'turnCount', 'numRequests', 'turnDurationMs', 'promptTokenDelta'])
    if (typeof v[f] !== 'number' || !Number.isFinite(v[f])) return `bad_${f}`;
  if (typeof v.model !== 'string') return 'bad_model';
  if (!Array.isArray(v.tools)) return 'bad_tools';
  if (v.strata !== undefined && !isObject(v.strata)) return 'bad_strata';
  return null;
}

/** One split's lines as the probe reads them, with counts of what it skipped. */
export class ProbeSplitReader {
  readonly lines: ProbeLine[] = [];
  readonly bad: Record<string, number> = {};
  read = 0;

  /** A JSONL line (blank lines are not counted). */
  addText(text: string): void {
    if (text.trim() === '') return;
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch {
      this.read++;
      this.bad.invalid_json = (this.bad.invalid_json ?? 0) + 1;
      return;
    }
    this.addValue(v);
  }

  /** A parsed line (the fan-in holds the dataset's lines as values). */
  addValue(v: unknown): void {
    this.read++;
    const p = probeLineProblem(v);
    if (p) {
      this.bad[p] = (this.bad[p] ?? 0) + 1;
      return;
    }
    const line = v as ProbeLine;
    // A copy when strata is missing: a caller's line is not changed.
    this.lines.push(line.strata === undefined ? { ...line, strata: {} } : line);
  }
}

export type ProbeInput = Record<
  string,
  { lines: number; used: number; bad: Record<string, number> }
>;

/** probe.json: the probe's result and what it read of each file. */
export type ProbeFile = ProbeResult & { input: ProbeInput };

export interface DatasetProbe {
  file: ProbeFile;
  review: ReviewItem[];
  /** Lines the probe could not use, over all files. */
  badLines: number;
}

/** Runs the probe on read splits (train required; validation/test when the dataset has them). */
export function probeReadSplits(
  read: Partial<Record<keyof ProbeSplits, ProbeSplitReader>>,
  settings: ProbeSettingsInput = {},
): DatasetProbe {
  const splits: ProbeSplits = { train: read.train?.lines ?? [] };
  const input: ProbeInput = {};
  for (const name of ['train', 'validation', 'test'] as const) {
    const r = read[name];
    if (!r) continue;
    if (name !== 'train') splits[name] = r.lines;
    input[PROBE_SPLIT_FILES[name]] = { lines: r.read, used: r.lines.length, bad: r.bad };
  }
  const { result, review } = runProbe(splits, settings);
  const badLines = Object.values(input).reduce(
    (a, f) => a + Object.values(f.bad).reduce((x, y) => x + y, 0),
    0,
  );
  if (badLines > 0)
    result.notes.push(`${badLines} line(s) not usable by the probe were skipped (see input)`);
  return { file: { ...result, input }, review, badLines };
}

/** The build's probe settings: on unless turned off; advice unless a minimum AUC gates it. */
export interface ProbeStepSettings {
  enabled: boolean;
  /** The build fails when the text AUC is below this (or missing). */
  minAuc?: number;
}

export const PROBE_OFF_MESSAGE =
  'the probe is turned off (SFT_PROBE=false, --no-probe or probe: false)';

/** Console lines for a manifest's probe section (ok, skipped, off or error). */
export function probeSectionLines(section: unknown): string[] {
  const s = section as Partial<ProbeResult> & { status?: string; message?: string };
  if (!s || typeof s !== 'object') return [];
  if (s.status === 'ok' || s.status === 'skipped') return probeSummaryLines(s as ProbeResult);
  if (s.status === 'off') return ['probe: off'];
  return [`probe: ${s.message ?? 'no result'}`];
}

/** Why the build fails the probe's gate, or null (no gate, or passed). */
export function probeGateFailure(file: ProbeResult, minAuc: number | undefined): string | null {
  if (minAuc === undefined) return null;
  const auc = file.verdict?.textAuc ?? null;
  if (auc !== null && auc >= minAuc) return null;
  return auc === null
    ? `probe: no text AUC (${file.message}) and a minimum of ${minAuc} is set (SFT_PROBE_MIN_AUC)`
    : `probe: text AUC ${auc} is below the minimum ${minAuc} (SFT_PROBE_MIN_AUC)`;
}

/**
 * The manifest's `probe` section: every figure of probe.json (with its seed and feature
 * settings), the files, and the gate. `failure` is set when a minimum AUC fails the build.
 */
export function probeManifestSection(
  probe: DatasetProbe | null,
  settings: ProbeStepSettings,
  error?: string,
): { section: Record<string, unknown>; failure: string | null } {
  if (!settings.enabled)
    return { section: { status: 'off', message: PROBE_OFF_MESSAGE }, failure: null };
  if (!probe) {
    const message = `the probe did not run: ${error ?? 'unknown error'}`;
    return {
      section: { status: 'error', message },
      failure: settings.minAuc === undefined ? null : `${message} and a minimum AUC is set`,
    };
  }
  const failure = probeGateFailure(probe.file, settings.minAuc);
  return {
    section: {
      ...probe.file,
      files: { ...PROBE_FILES },
      gate:
        settings.minAuc === undefined
          ? { minAuc: null, passed: null, mode: 'advise' }
          : { minAuc: settings.minAuc, passed: failure === null, mode: 'fail below minAuc' },
    },
    failure,
  };
}
