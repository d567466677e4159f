/**
 * `sft-balancer evaluate --dataset DIR`: the baseline router probe on a written dataset.
 * Reads DIR/train.jsonl (and validation.jsonl, test.jsonl when present), runs the pure
 * probe (shared/probe) and writes probe.json and label-review.jsonl; it writes no other
 * file, so the dataset's own files are never touched.
 */
import { access } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import {
  evaluateDataset,
  type EvaluateOptions,
  type EvaluateSummary,
} from '../adapters/files/evaluate-step';
import { InputFileError } from '../adapters/files/lines';
import { join } from '../adapters/files/output';
import { PROBE_SPLIT_FILES, ProbeSettingsSchema } from '../shared/probe';
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

export { PROBE_FILES } from '../shared/probe';
export { evaluateDataset, type EvaluateOptions, type EvaluateSummary };

const exists = (p: string) =>
  access(p).then(
    () => true,
    () => false,
  );

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
  if (!(await exists(join(v.dataset, PROBE_SPLIT_FILES.train))))
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
