/**
 * Yield-aware judging over assembled samples: the wave planner (waves.ts) driving a
 * Judge. Pure apart from the judge itself, so the in-process run and tests share it.
 */
import { annotateSamples, type AnnotateResult } from '../judge/annotate';
import type { BalanceConfig } from '../contracts/config';
import type { AnnotatedRow } from '../contracts/rows';
import { signalsScore } from '../judge/signals';
import { fingerprint } from '../util/hash';
import type { Judge } from '../judge/types';
import type { Sample } from '../samples/assemble';
import { compileStrata } from '../strata/strata';
import { WavePlanner, type WaveItem, type WaveSettingsInput } from './planner';

/**
 * The planner's view of samples: stratum key, cheap signal score (`signalsScore`:
 * complexity, chosen model and cue words) and the dedup group (a fingerprint of the
 * user message, as the balancer dedups; short enough to store per sample). Samples outside the strata are left out: never judged.
 */
export function waveItems(samples: readonly Sample[], config: BalanceConfig): WaveItem[] {
  const strata = compileStrata(config.stratify, config);
  const signals = { complexity: config.complexity, reasoningModels: config.reasoningModels };
  const items: WaveItem[] = [];
  for (const s of samples) {
    const code = strata.code(s);
    if (code < 0) continue;
    const item: WaveItem = {
      id: s.sampleId,
      stratum: strata.key(code),
      score: signalsScore(s, signals),
    };
    if (config.dedup) item.group = fingerprint(s.userMessage);
    items.push(item);
  }
  return items;
}

export interface WavesResult {
  planner: WavePlanner;
  /** Every judged sample: labelled rows, unlabeled ones and the judge requests made. */
  annotated: AnnotateResult;
  /** The labelled rows to offer the balancer (see WavePlanner.selection). */
  offered: AnnotatedRow[];
}

/** Judges `samples` in waves until the balance's quotas are met (or a limit is hit). */
export async function judgeWaves(
  samples: readonly Sample[],
  config: BalanceConfig,
  judge: Judge,
  settings: WaveSettingsInput,
  opts: { batchSize: number; onProgress?: (judged: number, wave: number) => void },
): Promise<WavesResult> {
  const planner = new WavePlanner(waveItems(samples, config), config, settings);
  const byId = new Map(samples.map((s) => [s.sampleId, s]));
  const all: AnnotateResult = { rows: [], unlabeled: [], calls: 0 };
  for (let ids = planner.nextWave(); ids !== null; ids = planner.nextWave()) {
    const wave = planner.history.length;
    const before = planner.judged - ids.length;
    const r = await annotateSamples(
      ids.map((id) => byId.get(id)!),
      judge,
      {
        batchSize: opts.batchSize,
        onProgress: (done) => opts.onProgress?.(before + done, wave),
      },
    );
    all.rows.push(...r.rows);
    all.unlabeled.push(...r.unlabeled);
    all.calls += r.calls;
    planner.record(
      [
        ...r.rows.map((row) => ({ id: row.sampleId!, label: row.label })),
        ...r.unlabeled.map((u) => ({ id: u.sampleId, label: null })),
      ],
      r.calls,
    );
  }
  const rowById = new Map(all.rows.map((row) => [row.sampleId!, row]));
  const offered = planner.selection().map((s) => rowById.get(s.id)!);
  return { planner, annotated: all, offered };
}
