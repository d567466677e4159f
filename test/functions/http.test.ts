/**
 * The HTTP functions against the real Azurite: POST /api/builds answers 202 with a
 * Location, refuses malformed bodies with a 400 naming the field (413 when too
 * large), and GET /api/builds/{id} answers 404 for unknown builds.
 */
import { HttpRequest, InvocationContext } from '@azure/functions';
import { describe, expect, it } from 'vitest';
import { createBuildStatus } from '../../functions/build-status';
import { registrations } from '../../functions/registry';
import { createStartBuild } from '../../functions/start-build';
import { BuildSpecSchema, buildPaths } from '../../shared/build/spec';
import { testDeps } from './harness';

const context = () => new InvocationContext({ invocationId: 'test', functionName: 'startBuild' });

function post(body: string, headers: Record<string, string> = {}) {
  return new HttpRequest({
    method: 'POST',
    url: 'http://localhost:7071/api/builds',
    body: { string: body },
    headers: { 'content-type': 'application/json', ...headers },
  });
}

const get = (id: string) =>
  new HttpRequest({ method: 'GET', url: `http://localhost:7071/api/builds/${id}`, params: { id } });

interface ErrorBody {
  error: string;
  message: string;
  issues: { field: string; message: string }[];
}

describe('POST /api/builds', () => {
  it('answers 202 with the build id, a status URL and a Location header, and queues the plan', async () => {
    const deps = testDeps();
    const res = await createStartBuild(deps)(
      post(
        JSON.stringify({
          pipeline: 'conversation',
          total: 500,
          ratio: '70:30',
          strategies: ['turnBucket'],
        }),
      ),
      context(),
    );
    expect(res.status).toBe(202);
    const body = res.jsonBody as { buildId: string; statusUrl: string };
    expect(body.statusUrl).toBe(`http://localhost:7071/api/builds/${body.buildId}`);
    expect((res.headers as Record<string, string>).Location).toBe(body.statusUrl);
    const spec = await deps.store.getJson(buildPaths(body.buildId).spec, BuildSpecSchema);
    expect(spec?.pipeline).toBe('conversation');
    expect(spec?.config.total).toBe(500);
    expect(spec?.config.ratio).toBeCloseTo(0.7, 12);
    const queue = deps.clients.queues.getQueueClient(deps.settings.queues.plan);
    const peeked = await queue.peekMessages();
    expect(JSON.parse(peeked.peekedMessageItems[0]!.messageText)).toEqual({
      kind: 'plan',
      buildId: body.buildId,
    });
  });

  it('accepts an empty body: a build with the configured defaults', async () => {
    const deps = testDeps({ SFT_TOTAL: '1234', SFT_PIPELINE: 'conversation' });
    const res = await createStartBuild(deps)(post(''), context());
    expect(res.status).toBe(202);
    const id = (res.jsonBody as { buildId: string }).buildId;
    const spec = await deps.store.getJson(buildPaths(id).spec, BuildSpecSchema);
    expect(spec?.config.total).toBe(1234);
    expect(spec?.config.stratify).toEqual(['turnBucket', 'position']);
  });

  it('accepts waves: the request over SFT_WAVES, either way', async () => {
    const deps = testDeps({ SFT_WAVES: 'true', SFT_JUDGE_BUDGET: '9000' });
    const specOf = async (body: string) => {
      const res = await createStartBuild(deps)(post(body), context());
      expect(res.status).toBe(202);
      const id = (res.jsonBody as { buildId: string }).buildId;
      return (await deps.store.getJson(buildPaths(id).spec, BuildSpecSchema))!;
    };
    expect((await specOf('{}')).waves?.maxJudged).toBe(9000);
    const custom = (await specOf('{"waves": {"judgeBudget": 500, "explore": 1}}')).waves;
    expect([custom?.maxJudged, custom?.explore]).toEqual([500, 1]);
    expect((await specOf('{"waves": false}')).waves).toBeUndefined();
  });

  const MALFORMED: [string, string, string][] = [
    ['not JSON', '{"total": 100', 'body'],
    ['an array', '[1, 2]', 'body'],
    ['total as a string', '{"total": "100"}', 'total'],
    ['total zero', '{"total": 0}', 'total'],
    ['total negative', '{"total": -5}', 'total'],
    ['total fractional', '{"total": 1.5}', 'total'],
    ['an unknown pipeline', '{"pipeline": "batch"}', 'pipeline'],
    ['ratio 0', '{"ratio": 0}', 'ratio'],
    ['ratio 1', '{"ratio": 1}', 'ratio'],
    ['ratio above 1', '{"ratio": 1.5}', 'ratio'],
    ['ratio "100:0"', '{"ratio": "100:0"}', 'ratio'],
    ['ratio as a word', '{"ratio": "half"}', 'ratio'],
    ['an unknown strategy', '{"strategies": ["turnBucket", "vibes"]}', 'strategies.1'],
    ['an unknown allocation', '{"allocation": "random"}', 'allocation'],
    ['a bad window timestamp', '{"window": {"from": "yesterday"}}', 'window.from'],
    [
      'a reversed window',
      '{"window": {"from": "2026-02-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}}',
      'window.from',
    ],
    ['a misspelt field', '{"totl": 5}', 'totl'],
    [
      'a file source (not allowed over HTTP)',
      '{"source": {"kind": "file", "path": "/etc/passwd"}}',
      'source.kind',
    ],
    ['a seed object', '{"seed": {"a": 1}}', 'seed'],
    ['a zero judge budget', '{"waves": {"judgeBudget": 0}}', 'waves.judgeBudget'],
    ['too many waves', '{"waves": {"maxWaves": 500}}', 'waves.maxWaves'],
  ];

  it.each(MALFORMED)('answers 400 naming the field for %s', async (_name, body, field) => {
    const deps = testDeps();
    const res = await createStartBuild(deps)(post(body), context());
    expect(res.status).toBe(400);
    const err = res.jsonBody as ErrorBody;
    expect(err.issues.map((i) => i.field)).toContain(field);
    expect(err.message).toContain(field);
    expect(await deps.store.list('builds/')).toEqual([]);
  });

  it('answers 413 for a body over the limit, by its length or its content', async () => {
    const deps = testDeps({ SFT_MAX_BODY_BYTES: '1024' });
    const huge = JSON.stringify({ seed: 'x'.repeat(100), pad: 'y'.repeat(5_000) });
    const byContent = await createStartBuild(deps)(post(huge), context());
    expect(byContent.status).toBe(413);
    expect((byContent.jsonBody as ErrorBody).issues[0]!.field).toBe('body');
    const byHeader = await createStartBuild(deps)(
      post('{}', { 'content-length': '999999' }),
      context(),
    );
    expect(byHeader.status).toBe(413);
    expect(await deps.store.list('builds/')).toEqual([]);
  });
});

describe('GET /api/builds/{id}', () => {
  it('answers 404 for an unknown or malformed id', async () => {
    const deps = testDeps();
    await deps.store.ensureContainer();
    for (const id of ['b-20260101t000000z-nothere', '../etc', '']) {
      const res = await createBuildStatus(deps)(get(id), context());
      expect(res.status).toBe(404);
    }
  });

  it('reports a freshly started build as planning', async () => {
    const deps = testDeps();
    const started = await createStartBuild(deps)(post('{"total": 10}'), context());
    const id = (started.jsonBody as { buildId: string }).buildId;
    const res = await createBuildStatus(deps)(get(id), context());
    expect(res.status).toBe(200);
    expect(res.jsonBody).toMatchObject({
      id,
      state: 'planning',
      createdBy: 'http',
      progress: { planned: null, judged: 0, failed: 0, pending: null },
      errors: [],
    });
  });
});

describe('registration', () => {
  it('registers both HTTP functions with function-level auth, never anonymous', () => {
    const http = registrations(testDeps()).filter((r) => r.kind === 'http');
    expect(http.map((r) => r.name).sort()).toEqual(['buildStatus', 'startBuild']);
    for (const r of http) expect(r.authLevel).toBe('function');
  });
});
