/**
 * The router probe (shared/probe) as the fan-in's last step: run on the delivered dataset
 * (the balancer's lines, target size) and written as probe.json and label-review.jsonl
 * next to the dataset's blobs, the same bytes the in-process build writes
 * (adapters/files/evaluate-step.ts). Advises: bad input is a skipped result and an
 * unexpected error a message in the manifest; a storage error writing the blobs is
 * thrown (transient, retried with the fan-in). The build fails only below a minimum AUC.
 */
import { createHash } from 'node:crypto';
import type { BlobStore } from '../../adapters/storage/blob-store';
import type { FileDigest } from '../../adapters/files/output';
import {
  PROBE_FILES,
  ProbeSplitReader,
  probeManifestSection,
  probeReadSplits,
  probeSummaryLines,
  type DatasetProbe,
  type ProbeStepSettings,
} from '../../shared/probe';

export interface StoreProbeStepResult {
  /** `{ probe: section }` for the manifest. */
  manifest: { probe: Record<string, unknown> };
  outputs: Record<string, FileDigest>;
  /** Why the build fails (a minimum AUC not reached), or null. */
  failure: string | null;
  /** Console lines (the verdict, the AUCs, the notes). */
  lines: string[];
}

const digestOf = (text: string, lines: number): FileDigest => {
  const buf = Buffer.from(text, 'utf8');
  return { sha256: createHash('sha256').update(buf).digest('hex'), lines, bytes: buf.length };
};

/**
 * Runs the probe on `dataset` (train, and validation when the build has one) and writes
 * its two blobs under `prefix` (the dataset's, e.g. datasets/{buildId}/).
 */
export async function probeStepToStore(
  store: Pick<BlobStore, 'put'>,
  prefix: string,
  dataset: { train: readonly unknown[]; validation?: readonly unknown[] },
  settings: ProbeStepSettings = { enabled: true },
): Promise<StoreProbeStepResult> {
  if (!settings.enabled) {
    const { section } = probeManifestSection(null, settings);
    return { manifest: { probe: section }, outputs: {}, failure: null, lines: ['probe: off'] };
  }
  let probe: DatasetProbe;
  try {
    const train = new ProbeSplitReader();
    for (const l of dataset.train) train.addValue(l);
    const read: { train: ProbeSplitReader; validation?: ProbeSplitReader } = { train };
    if (dataset.validation) {
      read.validation = new ProbeSplitReader();
      for (const l of dataset.validation) read.validation.addValue(l);
    }
    probe = probeReadSplits(read);
  } catch (err) {
    const { section, failure } = probeManifestSection(null, settings, (err as Error).message);
    return {
      manifest: { probe: section },
      outputs: {},
      failure,
      lines: [`probe: ${String(section.message)}`],
    };
  }
  // As writeJson and writeJsonl write them (adapters/files/output.ts): the same bytes.
  const resultText = JSON.stringify(probe.file, null, 2) + '\n';
  const reviewText = probe.review.map((r) => JSON.stringify(r) + '\n').join('');
  await store.put(`${prefix}${PROBE_FILES.result}`, resultText);
  await store.put(`${prefix}${PROBE_FILES.review}`, reviewText);
  const outputs: Record<string, FileDigest> = {
    [PROBE_FILES.result]: digestOf(resultText, 1),
    [PROBE_FILES.review]: digestOf(reviewText, probe.review.length),
  };
  const { section, failure } = probeManifestSection(probe, settings);
  return { manifest: { probe: section }, outputs, failure, lines: probeSummaryLines(probe.file) };
}
