/**
 * Limits that end a build rather than let one part grow without bound: a source
 * larger than the shards can hold fails at the plan step with a reason that names the
 * settings to raise (a judge batch reads its whole shard, so an oversized shard would
 * be a memory fault later). The other limits are tested where they live: message
 * size (test/shared/contracts.test.ts, test/trust/source-rows.test.ts), history
 * window (test/shared/samples.test.ts), HTTP body size and samples per build
 * (test/functions/http.test.ts, test/trust/http.test.ts).
 */
import { stat } from 'node:fs/promises';
import { InvocationContext } from '@azure/functions';
import { describe, expect, it } from 'vitest';
import { getOutcome, getPlan, startBuild } from '../../functions/build-ops';
import { createPlanBuild } from '../../functions/plan-build';
import { MAX_SHARD_OVERSIZE, sourceTooLarge } from '../../shared/build';
import { specFor, telemetryFile, testDeps } from '../functions/harness';

const ctx = () =>
  new InvocationContext({ invocationId: 'l', functionName: 'plan', triggerMetadata: {} });

describe('the shard limit', () => {
  it('admits a source up to maxShards × shardBytes × the oversize factor, and no more', () => {
    const limit = 1024 * 3 * MAX_SHARD_OVERSIZE;
    expect(sourceTooLarge(limit, 1024, 3)).toBeNull();
    expect(sourceTooLarge(limit + 1, 1024, 3)).toMatch(/raise SFT_MAX_SHARDS or SFT_SHARD_BYTES/);
  });

  it('fails a build whose source is too large at the plan step, writing no shard', async () => {
    const t = await telemetryFile(40, 81);
    const { size } = await stat(t.path);
    const deps = testDeps({ SFT_SHARD_BYTES: '1024', SFT_MAX_SHARDS: '2' });
    expect(size).toBeGreaterThan(1024 * 2 * MAX_SHARD_OVERSIZE);
    const spec = specFor(deps, 'too-large', {}, { kind: 'file', path: t.path });
    await startBuild(deps, spec);
    await createPlanBuild(deps)({ kind: 'plan', buildId: spec.id }, ctx());
    const outcome = await getOutcome(deps, spec.id);
    expect(outcome).toMatchObject({ state: 'failed', stage: 'plan' });
    expect(outcome!.reason).toContain(`the source is ${size} bytes`);
    expect(await getPlan(deps, spec.id)).toBeNull();
    expect(await deps.store.list(`builds/${spec.id}/shards/`)).toEqual([]);
  });

  it('plans a source within the limit into at most maxShards shards', async () => {
    const t = await telemetryFile(40, 81);
    const deps = testDeps({ SFT_SHARD_BYTES: '65536', SFT_MAX_SHARDS: '1' });
    const spec = specFor(deps, 'fits', {}, { kind: 'file', path: t.path });
    await startBuild(deps, spec);
    await createPlanBuild(deps)({ kind: 'plan', buildId: spec.id }, ctx());
    expect(await getOutcome(deps, spec.id)).toBeNull();
    expect((await getPlan(deps, spec.id))!.shards).toHaveLength(1);
  });
});
