/**
 * Reading a build's shards and wave lists, and recording a batch that failed for good:
 * what the judge batch, the fan-in's wave step and the poison handler share.
 */
import { buildPaths, type BatchFailure, type BuildSpec } from '../../shared/build/spec';
import { conversationOfSampleId, prepareShard, type PreparedShard } from '../../shared/build/batch';
import { WaveIdsSchema } from '../../shared/build/waves';
import { checkCompletion } from './build-ops';
import type { Deps } from './deps';

/**
 * Reads and prepares a shard (only the lines of the samples' conversations when
 * `sampleIds` are given: a wave batch); null when its blob is missing.
 */
export async function readShard(
  deps: Deps,
  spec: BuildSpec,
  shardId: string,
  sampleIds?: readonly string[],
): Promise<PreparedShard | null> {
  const buf = await deps.store.get(buildPaths(spec.id).shard(shardId));
  if (buf === null) return null;
  const conversations = sampleIds ? new Set(sampleIds.map(conversationOfSampleId)) : undefined;
  return prepareShard(buf.toString('utf8').split('\n'), spec, conversations);
}

/** Writes the failed marker (create-only) and lets the build move on. */
export async function recordBatchFailure(deps: Deps, failure: BatchFailure): Promise<void> {
  const wave = failure.wave ?? 0;
  await deps.store.create(
    buildPaths(failure.buildId).batch(failure.shardId, wave).failed,
    JSON.stringify(failure, null, 2),
  );
  await checkCompletion(deps, failure.buildId, wave);
}

/** The sample ids a wave batch judges; null when the blob is missing or unreadable. */
export async function readWaveIds(
  deps: Deps,
  buildId: string,
  wave: number,
  shardId: string,
): Promise<string[] | null> {
  const buf = await deps.store.get(buildPaths(buildId).waveIds(wave, shardId));
  if (buf === null) return null;
  try {
    const parsed = WaveIdsSchema.safeParse(JSON.parse(buf.toString('utf8')));
    return parsed.success ? parsed.data : null;
  } catch {
    return null; // not JSON
  }
}
