/**
 * POST /api/builds against the real Azurite, the bodies test/functions/http.test.ts
 * does not try (hostile JSON shapes, limits of each field), and the idempotency key:
 * a repeated or concurrent start with the same key returns the same build, once.
 */
import { HttpRequest, InvocationContext } from '@azure/functions';
import { describe, expect, it } from 'vitest';
import { createStartBuild, idempotentBuildId } from '../../functions/start-build';
import { testDeps } from '../functions/harness';

const context = () => new InvocationContext({ invocationId: 'test', functionName: 'startBuild' });

function post(body: string, headers: Record<string, string> = {}) {
  return new HttpRequest({
    method: 'POST',
    url: 'http://localhost:7071/api/builds',
    body: { string: body },
    headers: { 'content-type': 'application/json', ...headers },
  });
}

interface ErrorBody {
  error: string;
  message: string;
  issues: { field: string; message: string }[];
}

/** [name, body, field named]: malformed bodies beyond the 19 of the functions suite. */
const MORE_MALFORMED: [string, string, string][] = [
  ['JSON null', 'null', 'body'],
  ['a bare number', '5', 'body'],
  ['a bare string', '"build please"', 'body'],
  ['a trailing comma', '{"total": 5,}', 'body'],
  ['single-quoted JSON', "{'total': 5}", 'body'],
  ['total above the maximum', '{"total": 10000001}', 'total'],
  ['a seed longer than 128 characters', JSON.stringify({ seed: 's'.repeat(129) }), 'seed'],
  ['an empty seed', '{"seed": ""}', 'seed'],
  [
    'a source path over 1,024 characters',
    JSON.stringify({ source: { kind: 'blob', path: 'p'.repeat(1025) } }),
    'source.path',
  ],
  [
    'an unknown field inside source',
    '{"source": {"kind": "blob", "path": "a", "x": 1}}',
    'source.x',
  ],
  [
    'an unknown field inside window',
    '{"window": {"until": "2026-01-01T00:00:00Z"}}',
    'window.until',
  ],
  ['a validation share of 1', '{"validation": 1}', 'validation'],
  [
    'too many strategies',
    JSON.stringify({ strategies: Array(5).fill('turnBucket') }),
    'strategies',
  ],
  ['a duplicate key whose last value is bad', '{"total": 5, "total": "x"}', 'total'],
  ['a __proto__ key', '{"__proto__": {"total": 5}}', '__proto__'],
  ['deep nesting', `{"seed": ${'['.repeat(3000)}${']'.repeat(3000)}}`, 'seed'],
  ['an infinite ratio literal', '{"ratio": 1e999}', 'ratio'],
];

describe('POST /api/builds refuses more malformed bodies', () => {
  it.each(MORE_MALFORMED)('answers 400 naming the field for %s', async (_n, body, field) => {
    const deps = testDeps();
    const res = await createStartBuild(deps)(post(body), context());
    expect(res.status).toBe(400);
    const err = res.jsonBody as ErrorBody;
    expect(err.issues.map((i) => i.field)).toContain(field);
    expect(err.message).toContain(field);
    expect(await deps.store.list('builds/')).toEqual([]);
  });

  it('answers 400 for a malformed Idempotency-Key, before reading the body', async () => {
    const deps = testDeps();
    for (const key of ['short', 'has spaces in it', 'x'.repeat(129), 'semi;colon;key']) {
      const res = await createStartBuild(deps)(post('{}', { 'idempotency-key': key }), context());
      expect(res.status).toBe(400);
      expect((res.jsonBody as ErrorBody).issues[0]!.field).toBe('Idempotency-Key');
    }
    expect(await deps.store.list('builds/')).toEqual([]);
  });
});

describe('an idempotency key', () => {
  const body = JSON.stringify({ total: 300, ratio: '70:30' });

  it('returns the same build for a repeated start, and queues its plan once', async () => {
    const deps = testDeps();
    const key = 'nightly-2026-11-25';
    const first = await createStartBuild(deps)(post(body, { 'Idempotency-Key': key }), context());
    const again = await createStartBuild(deps)(post(body, { 'Idempotency-Key': key }), context());
    expect(first.status).toBe(202);
    expect(again.status).toBe(200);
    const id = (first.jsonBody as { buildId: string }).buildId;
    expect(id).toBe(idempotentBuildId(key));
    expect(again.jsonBody).toMatchObject({ buildId: id, replayed: true });
    expect((await deps.store.list('builds/')).filter((n) => n.endsWith('build.json'))).toEqual([
      `builds/${id}/build.json`,
    ]);
    const queue = deps.clients.queues.getQueueClient(deps.settings.queues.plan);
    expect((await queue.getProperties()).approximateMessagesCount).toBe(1);
  });

  it('creates one build when the same start arrives five times at once', async () => {
    const deps = testDeps();
    const start = createStartBuild(deps);
    const res = await Promise.all(
      Array.from({ length: 5 }, () =>
        start(post(body, { 'Idempotency-Key': 'burst-0001' }), context()),
      ),
    );
    expect(res.map((r) => r.status).sort()).toEqual([200, 200, 200, 200, 202]);
    expect(new Set(res.map((r) => (r.jsonBody as { buildId: string }).buildId)).size).toBe(1);
    const queue = deps.clients.queues.getQueueClient(deps.settings.queues.plan);
    expect((await queue.getProperties()).approximateMessagesCount).toBe(1);
  });

  it('refuses the same key with a different request (409), leaving the first build alone', async () => {
    const deps = testDeps();
    const start = createStartBuild(deps);
    const ok = await start(post(body, { 'Idempotency-Key': 'reuse-key-1' }), context());
    const other = await start(
      post(JSON.stringify({ total: 999 }), { 'Idempotency-Key': 'reuse-key-1' }),
      context(),
    );
    expect(ok.status).toBe(202);
    expect(other.status).toBe(409);
    expect((other.jsonBody as ErrorBody).error).toBe('idempotency_key_reused');
  });

  it('gives different keys different builds', async () => {
    const deps = testDeps();
    const start = createStartBuild(deps);
    const a = await start(post(body, { 'Idempotency-Key': 'key-aaaa-1' }), context());
    const b = await start(post(body, { 'Idempotency-Key': 'key-bbbb-2' }), context());
    expect((a.jsonBody as { buildId: string }).buildId).not.toBe(
      (b.jsonBody as { buildId: string }).buildId,
    );
  });
});
