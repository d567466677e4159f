/**
 * A failed build still owes its user the reasons its lines were set aside: the batches'
 * quarantined lines, in line order, as the dataset's quarantine.jsonl (the blob a
 * published build writes too), so `run` and `download` hand them over with status.json.
 */
import { buildPaths } from '../../shared/build/spec';
import type { QuarantineRecord } from '../../shared/balance/balancer';
import { toJsonl } from '../../shared/util/jsonl';
import type { Deps } from './deps';

/** Round-0 (plan or scan) batch quarantine blobs of a build: wave batches quarantine nothing. */
async function batchQuarantineBlobs(deps: Deps, buildId: string): Promise<string[]> {
  const one = buildPaths(buildId).quarantine('x');
  const prefix = one.slice(0, one.lastIndexOf('/') + 1);
  const names = await deps.store.list(prefix);
  return names.filter((n) => n.endsWith('.quarantine.jsonl') && !n.includes('/', prefix.length));
}

/**
 * Writes datasets/{id}/quarantine.jsonl from the batches' quarantine blobs, unless the
 * publish wrote it already (a build failed by its probe); a line that is not a record
 * (a torn blob) is left out. Returns how many records it wrote (null: already there).
 */
export async function publishFailedQuarantine(deps: Deps, buildId: string): Promise<number | null> {
  const target = buildPaths(buildId).datasetQuarantine;
  if (await deps.store.exists(target)) return null;
  const records: QuarantineRecord[] = [];
  for (const name of await batchQuarantineBlobs(deps, buildId)) {
    const text = (await deps.store.get(name))?.toString('utf8') ?? '';
    for (const line of text.split('\n')) {
      if (line.trim() === '') continue;
      try {
        const v = JSON.parse(line) as QuarantineRecord;
        if (typeof v?.line === 'number' && typeof v.reason === 'string') records.push(v);
      } catch {
        // A torn line: the batch's own record of it is the blob; nothing to add here.
      }
    }
  }
  records.sort((a, b) => a.line - b.line);
  await deps.store.put(target, toJsonl(records));
  return records.length;
}
