/**
 * Near-dedup settings of the Functions build: SFT_NEAR_DEDUP / SFT_DEDUP_THRESHOLD as
 * the defaults, the body fields nearDedup / dedupThreshold over them, and bad values
 * refused naming the setting or the field (HTTP 400, nothing written).
 */
import { HttpRequest, InvocationContext } from '@azure/functions';
import { describe, expect, it } from 'vitest';
import { createStartBuild } from '../../functions/start-build';
import { BuildRequestSchema, buildSpecOf } from '../../shared/build/spec';
import { loadSettings } from '../../shared/build/settings';
import { testDeps } from './harness';

const base = { AzureWebJobsStorage: 'UseDevelopmentStorage=true' };

function specWith(env: Record<string, string>, request: unknown) {
  const s = loadSettings({ ...base, ...env });
  return buildSpecOf({
    id: 'near-settings',
    createdAt: '2026-12-02T00:00:00.000Z',
    createdBy: 'http',
    request: BuildRequestSchema.parse(request),
    defaults: s.defaults,
    source: s.source,
    judge: s.judge,
    minJudgedShare: s.minJudgedShare,
    shardBytes: s.shardBytes,
    maxShards: s.maxShards,
  });
}

describe('near-dedup settings and body fields', () => {
  it('is on at 0.8 by default; the settings set the default and the body overrides it', () => {
    expect(specWith({}, {}).config).toMatchObject({ nearDedup: true, dedupThreshold: 0.8 });
    expect(
      specWith({ SFT_NEAR_DEDUP: 'false', SFT_DEDUP_THRESHOLD: '0.9' }, {}).config,
    ).toMatchObject({ nearDedup: false, dedupThreshold: 0.9 });
    expect(
      specWith(
        { SFT_NEAR_DEDUP: 'false', SFT_DEDUP_THRESHOLD: '0.9' },
        { nearDedup: true, dedupThreshold: 0.85 },
      ).config,
    ).toMatchObject({ nearDedup: true, dedupThreshold: 0.85 });
  });

  it.each([
    ['SFT_DEDUP_THRESHOLD', '0'],
    ['SFT_DEDUP_THRESHOLD', '1.2'],
    ['SFT_DEDUP_THRESHOLD', 'high'],
    ['SFT_NEAR_DEDUP', 'maybe'],
  ])('refuses %s=%s naming the setting', (name, value) => {
    expect(() => loadSettings({ ...base, [name]: value })).toThrow(new RegExp(name));
  });

  it.each([
    ['{"dedupThreshold": 0}', 'dedupThreshold'],
    ['{"dedupThreshold": 1.5}', 'dedupThreshold'],
    ['{"dedupThreshold": "0.8"}', 'dedupThreshold'],
    ['{"nearDedup": "no"}', 'nearDedup'],
  ])('POST /api/builds answers 400 naming the field for %s', async (body, field) => {
    const deps = testDeps();
    const req = new HttpRequest({
      method: 'POST',
      url: 'http://localhost:7071/api/builds',
      body: { string: body },
      headers: { 'content-type': 'application/json' },
    });
    const ctx = new InvocationContext({ invocationId: 't', functionName: 'startBuild' });
    const res = await createStartBuild(deps)(req, ctx);
    expect(res.status).toBe(400);
    const err = res.jsonBody as { issues: { field: string }[] };
    expect(err.issues.map((i) => i.field.split('.')[0])).toContain(field);
    expect(await deps.store.list('builds/')).toEqual([]);
  });
});
