/**
 * Judging a batch again when its committed results are missing or corrupt: the fan-in
 * does it for first-round batches and the fan-in's wave step for wave batches. The
 * verdict cache makes it cheap; the results are rewritten under their deterministic
 * names (an overwrite), the same blobs the batch writes.
 */
import { annotateSamples } from '../../shared/judge/annotate';
import { buildPaths, type BuildSpec } from '../../shared/build/spec';
import { waveSamples } from '../../shared/build/waves';
import type { QuarantineRecord } from '../../shared/balance/balancer';
import type { AnnotatedRow } from '../../shared/contracts/rows';
import { toJsonl } from '../../shared/util/jsonl';
import type { Deps } from './deps';
import { readShard } from './shards';

/**
 * Judges a batch again and rewrites its results: the whole shard in round 0, the
 * listed `ids` in a wave. The scan round of a wave-judged build judged nothing: its
 * shard is only read again.
 */
export async function rejudgeBatch(
  deps: Deps,
  spec: BuildSpec,
  shardId: string,
  wave = 0,
  ids?: readonly string[],
): Promise<{ rows: AnnotatedRow[]; quarantine: QuarantineRecord[] }> {
  const p = buildPaths(spec.id);
  const paths = p.batch(shardId, wave);
  const prepared = await readShard(deps, spec, shardId, ids);
  if (!prepared) throw new Error(`shard blob ${p.shard(shardId)} is missing`);
  if (spec.waves && wave === 0) {
    await deps.store.put(paths.rows, '');
    await deps.store.put(paths.quarantine, toJsonl(prepared.quarantine));
    return { rows: [], quarantine: prepared.quarantine };
  }
  const chosen = ids ? waveSamples(prepared, ids) : { samples: prepared.samples, missing: [] };
  const judged = await annotateSamples(chosen.samples, deps.judgeFor(spec), {
    batchSize: spec.judge.batchSize,
  });
  await deps.store.put(paths.rows, toJsonl(judged.rows));
  await deps.store.put(paths.unlabeled, toJsonl([...judged.unlabeled, ...chosen.missing]));
  if (wave > 0) return { rows: judged.rows, quarantine: [] };
  await deps.store.put(paths.quarantine, toJsonl(prepared.quarantine));
  return { rows: judged.rows, quarantine: prepared.quarantine };
}
