/**
 * The baseline router probe (shared/probe) on a dataset directory: `evaluate --dataset DIR`
 * and the step at the end of every file build (cli/jobs.ts). Reads train.jsonl (and
 * validation.jsonl, test.jsonl when present) and writes probe.json and label-review.jsonl;
 * it writes no other file, so the dataset's own files are never touched. Both names are
 * among the files a dataset directory may hold (OUTPUT_FILES), so a later build replaces
 * a directory holding them rather than refusing it.
 */
import { access } from 'node:fs/promises';
import { resolve } from 'node:path';
import { readFileLines } from './lines';
import { ensureDir, join, OutputPathError, writeJson, writeJsonl, type FileDigest } from './output';
import {
  PROBE_FILES,
  PROBE_SPLIT_FILES,
  ProbeSettingsSchema,
  ProbeSplitReader,
  probeManifestSection,
  probeReadSplits,
  probeSummaryLines,
  type DatasetProbe,
  type ProbeResult,
  type ProbeSettingsInput,
  type ProbeSplits,
  type ProbeStepSettings,
} from '../../shared/probe';

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
  /** probe.json's content. */
  result: DatasetProbe['file'];
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
  const read: Partial<Record<keyof ProbeSplits, ProbeSplitReader>> = {};
  for (const [name, file] of Object.entries(PROBE_SPLIT_FILES) as [keyof ProbeSplits, string][]) {
    const path = join(dir, file);
    if (name !== 'train' && !(await exists(path))) continue;
    const r = new ProbeSplitReader();
    await readFileLines(path, (text) => r.addText(text));
    read[name] = r;
  }
  const probe = probeReadSplits(read, settings);
  const out = opts.out ?? dir;
  await ensureDir(out);
  const probePath = join(out, PROBE_FILES.result);
  const reviewPath = join(out, PROBE_FILES.review);
  const inputs = new Set(Object.keys(probe.file.input).map((f) => resolve(dir, f)));
  if (inputs.has(resolve(probePath)) || inputs.has(resolve(reviewPath)))
    throw new OutputPathError('the probe would overwrite a dataset file');
  const outputs: Record<string, FileDigest> = {};
  outputs[PROBE_FILES.result] = await writeJson(probePath, probe.file);
  outputs[PROBE_FILES.review] = await writeJsonl(reviewPath, probe.review);
  const result = probe.file;
  return {
    status: result.status,
    message: result.message,
    textAuc: result.verdict?.textAuc ?? null,
    signalsAuc: result.verdict?.signalsAuc ?? null,
    verdict: result.verdict?.kind ?? null,
    probe: probePath,
    review: reviewPath,
    outputs,
    samples: Object.fromEntries(Object.entries(result.input).map(([f, v]) => [f, v.used])),
    badLines: probe.badLines,
    report: probeSummaryLines(result),
    result,
  };
}

export interface ProbeStepResult {
  /** `{ probe: section }` for the manifest. */
  manifest: { probe: Record<string, unknown> };
  /** Digests of probe.json and label-review.jsonl (none when the probe is off). */
  outputs: Record<string, FileDigest>;
  /** Why the build fails (a minimum AUC not reached), or null. */
  failure: string | null;
}

/**
 * The probe as the last step of a file build: run on the dataset just written in `dir`
 * (the staging directory, so the set is swapped in whole with the dataset), its files
 * written beside it. Advises: bad input is a skipped result, an unexpected error a message
 * in the manifest; the build fails only below `settings.minAuc`.
 */
export async function probeStep(
  dir: string,
  settings: ProbeStepSettings = { enabled: true },
): Promise<ProbeStepResult> {
  if (!settings.enabled) {
    const { section } = probeManifestSection(null, settings);
    return { manifest: { probe: section }, outputs: {}, failure: null };
  }
  let summary: EvaluateSummary;
  try {
    summary = await evaluateDataset(dir);
  } catch (err) {
    const { section, failure } = probeManifestSection(null, settings, (err as Error).message);
    return { manifest: { probe: section }, outputs: {}, failure };
  }
  const { section, failure } = probeManifestSection(
    { file: summary.result, review: [], badLines: summary.badLines },
    settings,
  );
  return { manifest: { probe: section }, outputs: summary.outputs, failure };
}
