/**
 * `sft-balancer evaluate --dataset DIR`: the baseline router probe on a written dataset.
 * Reads DIR/train.jsonl (and validation.jsonl, test.jsonl when present), runs the pure
 * probe (shared/probe) and writes probe.json and label-review.jsonl; it writes no other
 * file, so the dataset's own files are never touched.
 */
import { access } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { InputFileError, readFileLines } from '../adapters/files/lines';
import { ensureDir, join, writeJson, writeJsonl, type FileDigest } from '../adapters/files/output';
import {
  ProbeSettingsSchema,
  probeSummaryLines,
  runProbe,
  type ProbeLine,
  type ProbeResult,
  type ProbeSettingsInput,
  type ProbeSplits,
} from '../shared/probe';
import { UsageError } from './args';

export const EVALUATE_USAGE = `Usage: sft-balancer evaluate --dataset DIR [--out DIR] [options]

Trains a baseline router probe on the dataset and reports whether its labels can be
learned from the text a router sees: logistic regression on hashed word and character
n-grams (the text probe) beside the same learner on the telemetry signals (the signals
probe). Trains on train.jsonl and scores validation.jsonl and test.jsonl, or 5-fold
cross-validation grouped by conversation when the dataset has no held-out split.
Writes probe.json (every figure, the seed and the feature settings) and
label-review.jsonl (the samples the text probe most confidently disputes) to --out.

  --dataset DIR       dataset directory (train.jsonl; validation.jsonl, test.jsonl optional)
  --out DIR           where to write probe.json and label-review.jsonl (default: DIR)
  --seed S            probe seed (default 42)
  --review N          samples in the label review (default 50)
  --folds K           folds when there is no held-out split (default 5)
  --bootstrap N       bootstrap resamples of the AUC interval (default 1000)
  --epochs N          training passes (default 3)
  --min-auc X         exit 1 when the text AUC is below X (default: advise only)
  -q, --quiet         no summary on stderr
  --json              print the summary as JSON on stdout`;

/** The files evaluate writes; nothing else in the output directory is written. */
export const PROBE_FILES = { result: 'probe.json', review: 'label-review.jsonl' } as const;
const SPLIT_FILES = { train: 'train.jsonl', validation: 'validation.jsonl', test: 'test.jsonl' };

export interface EvaluateOptions {
  /** Output directory (default: the dataset directory). */
  out?: string;
  settings?: ProbeSettingsInput;
}

export interface EvaluateSummary {
  status: ProbeResult['status'];
  message: string;
  textAuc: number | null;
  signalsAuc: number | null;
  verdict: string | null;
  probe: string;
  review: string;
  outputs: Record<string, FileDigest>;
  /** Usable lines read per file. */
  samples: Record<string, number>;
  badLines: number;
  /** Console lines: the verdict, the AUCs per evaluation, the review, the notes. */
  report: string[];
}

interface ReadSplit {
  lines: ProbeLine[];
  bad: Record<string, number>;
  read: number;
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** Why a parsed value is not a usable dataset line, or null. */
function lineProblem(v: unknown): string | null {
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

async function readSplit(path: string): Promise<ReadSplit> {
  const out: ReadSplit = { lines: [], bad: {}, read: 0 };
  await readFileLines(path, (text) => {
    if (text.trim() === '') return;
    out.read++;
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch {
      out.bad.invalid_json = (out.bad.invalid_json ?? 0) + 1;
      return;
    }
    const p = lineProblem(v);
    if (p) {
      out.bad[p] = (out.bad[p] ?? 0) + 1;
      return;
    }
    const line = v as ProbeLine;
    if (line.strata === undefined) line.strata = {};
    out.lines.push(line);
  });
  return out;
}

const exists = (p: string) =>
  access(p).then(
    () => true,
    () => false,
  );

/**
 * Runs the probe on the dataset in `dir` and writes probe.json and label-review.jsonl to
 * `opts.out` (default `dir`). A dataset the probe cannot use (one class, too few samples)
 * gives a skipped result with its reason, not an error; a missing train.jsonl is an
 * InputFileError.
 */
export async function evaluateDataset(
  dir: string,
  opts: EvaluateOptions = {},
): Promise<EvaluateSummary> {
  const settings = ProbeSettingsSchema.parse(opts.settings ?? {});
  const splits: ProbeSplits = { train: [] };
  const input: Record<string, { lines: number; used: number; bad: Record<string, number> }> = {};
  for (const [name, file] of Object.entries(SPLIT_FILES) as [keyof ProbeSplits, string][]) {
    const path = join(dir, file);
    if (name !== 'train' && !(await exists(path))) continue;
    const read = await readSplit(path);
    splits[name] = read.lines;
    input[file] = { lines: read.read, used: read.lines.length, bad: read.bad };
  }
  const { result, review } = runProbe(splits, settings);
  const badLines = Object.values(input).reduce(
    (a, f) => a + Object.values(f.bad).reduce((x, y) => x + y, 0),
    0,
  );
  if (badLines > 0)
    result.notes.push(`${badLines} line(s) not usable by the probe were skipped (see input)`);
  const out = opts.out ?? dir;
  await ensureDir(out);
  const probePath = join(out, PROBE_FILES.result);
  const reviewPath = join(out, PROBE_FILES.review);
  const inputs = new Set(Object.keys(input).map((f) => resolve(dir, f)));
  if (inputs.has(resolve(probePath)) || inputs.has(resolve(reviewPath)))
    throw new UsageError('the probe would overwrite a dataset file');
  const outputs: Record<string, FileDigest> = {};
  outputs[PROBE_FILES.result] = await writeJson(probePath, { ...result, input });
  outputs[PROBE_FILES.review] = await writeJsonl(reviewPath, review);
  return {
    status: result.status,
    message: result.message,
    textAuc: result.verdict?.textAuc ?? null,
    signalsAuc: result.verdict?.signalsAuc ?? null,
    verdict: result.verdict?.kind ?? null,
    probe: probePath,
    review: reviewPath,
    outputs,
    samples: Object.fromEntries(Object.entries(input).map(([f, v]) => [f, v.used])),
    badLines,
    report: probeSummaryLines(result),
  };
}

const number = (v: string | undefined, flag: string, int: boolean): number | undefined => {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || (int && !Number.isInteger(n)))
    throw new UsageError(`--${flag} must be ${int ? 'an integer' : 'a number'}, got "${v}"`);
  return n;
};

/**
 * The `evaluate` command: parses argv, runs {@link evaluateDataset}, prints the summary.
 * Exit code 0, or 1 when --min-auc is given and the text AUC falls below it (or is missing).
 */
export async function evaluateCommand(argv: string[]): Promise<number> {
  let v;
  try {
    v = parseArgs({
      args: argv,
      options: {
        dataset: { type: 'string' },
        out: { type: 'string' },
        seed: { type: 'string' },
        review: { type: 'string' },
        folds: { type: 'string' },
        bootstrap: { type: 'string' },
        epochs: { type: 'string' },
        'min-auc': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
        quiet: { type: 'boolean', short: 'q' },
        json: { type: 'boolean' },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (v.help) {
    process.stdout.write(`${EVALUATE_USAGE}\n`);
    return 0;
  }
  if (!v.dataset) throw new UsageError('--dataset DIR is required');
  const raw = {
    seed: number(v.seed, 'seed', true),
    reviewSize: number(v.review, 'review', true),
    folds: number(v.folds, 'folds', true),
    bootstrap: number(v.bootstrap, 'bootstrap', true),
    epochs: number(v.epochs, 'epochs', true),
  };
  const parsed = ProbeSettingsSchema.safeParse(
    Object.fromEntries(Object.entries(raw).filter(([, x]) => x !== undefined)),
  );
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new UsageError(`${String(issue.path[0] ?? 'settings')}: ${issue.message}`);
  }
  const minAuc = number(v['min-auc'], 'min-auc', false);
  if (!(await exists(join(v.dataset, SPLIT_FILES.train))))
    throw new InputFileError(`no train.jsonl in ${v.dataset}`);
  const summary = await evaluateDataset(v.dataset, {
    ...(v.out !== undefined ? { out: v.out } : {}),
    settings: parsed.data,
  });
  if (v.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
  if (!v.quiet) {
    const lines = [...summary.report, `  wrote ${summary.probe} and ${summary.review}`];
    process.stderr.write(`${lines.join('\n')}\n`);
  }
  if (minAuc !== undefined && !(summary.textAuc !== null && summary.textAuc >= minAuc)) {
    process.stderr.write(
      `probe: text AUC ${summary.textAuc ?? 'n/a'} is below --min-auc ${minAuc}\n`,
    );
    return 1;
  }
  return 0;
}
