/**
 * Reading a build's shards and wave lists, and recording a batch that failed for good:
 * what the judge batch, the fan-in's wave step and the poison handler share.
 */
import {
  ShardIndexSchema,
  buildPaths,
  type BatchFailure,
  type BuildSpec,
  type ShardRun,
} from '../../shared/build/spec';
import {
  conversationOfSampleId,
  prepareShard,
  type PreparedShard,
  type ShardLine,
} from '../../shared/build/batch';
import {
  SourceChangedError,
  type LineSource,
  type SourceIdentity,
  type Span,
} from '../../adapters/storage/source';
import { WaveIdsSchema } from '../../shared/build/waves';
import { checkCompletion, getPlan } from './build-ops';
import type { Deps } from './deps';

/** Runs closer than this are read with one ranged read (the bytes between are dropped). */
const GAP_BYTES = 256 << 10;

/** The lines of a shard's runs: ranged reads of the source, split and numbered. */
export async function readRuns(
  source: LineSource,
  identity: SourceIdentity,
  runs: readonly ShardRun[],
): Promise<ShardLine[]> {
  const spans: Span[] = [];
  const spanOf: number[] = [];
  for (const [offset, bytes] of runs) {
    const last = spans[spans.length - 1];
    if (
      last &&
      offset >= last.offset + last.count &&
      offset - (last.offset + last.count) <= GAP_BYTES
    )
      last.count = offset + bytes - last.offset;
    else spans.push({ offset, count: bytes });
    spanOf.push(spans.length - 1);
  }
  const bufs = await source.readSpans!(spans, identity);
  const out: ShardLine[] = [];
  runs.forEach((run, i) => {
    const span = spans[spanOf[i]!]!;
    const buf = bufs[spanOf[i]!]!;
    const from = run[0] - span.offset;
    const to = from + run[1];
    if (to > buf.length)
      throw new SourceChangedError(
        `the telemetry source (${source.name}) is shorter than it was planned; run the build again`,
      );
    if (run.length === 4) {
      out.push({ lineNo: run[2], raw: buf.toString('utf8', from, to), bytes: run[3] });
      return;
    }
    let lineNo = run[2];
    let pos = from;
    while (pos < to) {
      let nl = buf.indexOf(0x0a, pos);
      if (nl === -1 || nl >= to) nl = to;
      const end = nl > pos && buf[nl - 1] === 0x0d ? nl - 1 : nl;
      if (end > pos) out.push({ lineNo, raw: buf.toString('utf8', pos, end) });
      lineNo++;
      pos = nl + 1;
    }
  });
  return out;
}

/**
 * Reads and prepares a shard (only the lines of the samples' conversations when
 * `sampleIds` are given: a wave batch); null when it is missing (no such shard in the
 * plan, its index or copy blob gone). A shard of a blob or file source is read from
 * the source by its byte ranges, checked against the ETag (or size and mtime) the
 * plan recorded: {@link SourceChangedError} when the source changed since.
 */
export async function readShard(
  deps: Deps,
  spec: BuildSpec,
  shardId: string,
  sampleIds?: readonly string[],
): Promise<PreparedShard | null> {
  const conversations = sampleIds ? new Set(sampleIds.map(conversationOfSampleId)) : undefined;
  const plan = await getPlan(deps, spec.id);
  if (plan?.source) {
    const entry = plan.shards.find((s) => s.id === shardId);
    if (!entry) return null;
    const runs =
      entry.runs ??
      (await deps.store.getJson(buildPaths(spec.id).shardIndex(shardId), ShardIndexSchema))?.runs;
    if (!runs) return null;
    const source = deps.openSource(spec.source);
    if (!source.readSpans)
      throw new Error(`plan: the source ${source.name} cannot be read by byte ranges`);
    return prepareShard(await readRuns(source, plan.source, runs), spec, conversations);
  }
  const buf = await deps.store.get(buildPaths(spec.id).shard(shardId));
  if (buf === null) return null;
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
