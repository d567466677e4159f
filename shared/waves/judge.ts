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
  const itemOf = waveItemOf(config);
  const items: WaveItem[] = [];
  for (const s of samples) {
    const item = itemOf(s);
    if (item) items.push(item);
  }
  return items;
}

/** {@link waveItems} one sample at a time: its item, or null when it is outside the strata. */
export function waveItemOf(config: BalanceConfig): (s: Sample) => WaveItem | null {
  const strata = compileStrata(config.stratify, config);
  const signals = { complexity: config.complexity, reasoningModels: config.reasoningModels };
  return (s) => {
    const code = strata.code(s);
    if (code < 0) return null;
    const item: WaveItem = {
      id: s.sampleId,
      stratum: strata.key(code),
      score: signalsScore(s, signals),
    };
    if (config.dedup) item.group = fingerprint(s.userMessage);
    return item;
  };
}

/**
 * Samples for the planner without holding them: its items, and the samples of a wave
 * by id, in the order asked (an in-process run keeps them in a file: SampleSpill).
 */
export interface WaveSamples {
  items: WaveItem[];
  load(ids: readonly string[]): Promise<Sample[]>;
}

export interface WavesResult {
  planner: WavePlanner;
  /** Every judged sample: labelled rows, unlabeled ones and the judge requests made. */
  annotated: AnnotateResult;
  /** The labelled rows to offer the balancer (see WavePlanner.selection). */
  offered: AnnotatedRow[];
  /** Tokens and estimated cost per wave (judges with stats). */
  usageByWave: {
    wave: number;
    promptTokens: number;
    cachedTokens: number;
    completionTokens: number;
    estimatedCost: number;
  }[];
}

/** Judges `samples` in waves until the balance's quotas are met (or a limit is hit). */
export async function judgeWaves(
  samples: readonly Sample[] | WaveSamples,
  config: BalanceConfig,
  judge: Judge,
  settings: WaveSettingsInput,
  opts: { batchSize: number; onProgress?: (judged: number, wave: number) => void },
): Promise<WavesResult> {
  let source: WaveSamples;
  if ('items' in samples) source = samples;
  else {
    const byId = new Map(samples.map((s) => [s.sampleId, s]));
    source = {
      items: waveItems(samples, config),
      load: (ids) => Promise.resolve(ids.map((id) => byId.get(id)!)),
    };
  }
  const planner = new WavePlanner(source.items, config, settings);
  const all: AnnotateResult = { rows: [], unlabeled: [], calls: 0 };
  const usageByWave: WavesResult['usageByWave'] = [];
  for (let ids = planner.nextWave(); ids !== null; ids = planner.nextWave()) {
    const wave = planner.history.length;
    const was = judge.stats?.();
    const before = planner.judged - ids.length;
    const r = await annotateSamples(await source.load(ids), judge, {
      batchSize: opts.batchSize,
      onProgress: (done) => opts.onProgress?.(before + done, wave),
    });
    all.rows.push(...r.rows);
    all.unlabeled.push(...r.unlabeled);
    all.calls += r.calls;
    const now = judge.stats?.();
    if (was && now)
      usageByWave.push({
        wave,
        promptTokens: now.promptTokens - was.promptTokens,
        cachedTokens: now.cachedTokens - was.cachedTokens,
        completionTokens: now.completionTokens - was.completionTokens,
        estimatedCost: Math.round((now.estimatedCost - was.estimatedCost) * 1e6) / 1e6,
      });
    planner.record(
      [
        ...r.rows.map((row) => ({ id: row.sampleId!, label: row.label })),
        ...r.unlabeled.map((u) => ({ id: u.sampleId, label: null })),
      ],
      r.calls,
      was && now ? now.estimatedCost - was.estimatedCost : undefined,
    );
  }
  const rowById = new Map(all.rows.map((row) => [row.sampleId!, row]));
  const offered = planner.selection().map((s) => rowById.get(s.id)!);
  return { planner, annotated: all, offered, usageByWave };
}
