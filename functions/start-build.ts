/**
 * POST /api/builds: starts a build with the configured defaults, overridden by the
 * body. 202 with the build id and its status URL (also in Location); 400 naming the
 * bad field; 413 over the size limit.
 *
 * An `Idempotency-Key` header makes a retried start safe: the build id derives from
 * the key, so a repeat (or a concurrent duplicate) finds the build the first one
 * created and answers 200 with the same id; the same key with a different request
 * is refused with 409.
 */
import { createHash } from 'node:crypto';
import type { HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import {
  BuildRequestSchema,
  buildSpecOf,
  newBuildId,
  type BuildRequest,
  type BuildSpec,
} from '../shared/build/spec';
import { specDefaultsOf } from '../shared/build/settings';
import { getSpec, startBuild } from './lib/build-ops';
import type { Deps } from './lib/deps';

/** What a caller may use as an idempotency key (a UUID, a ULID, a job name). */
const IDEMPOTENCY_KEY = /^[A-Za-z0-9._:-]{8,128}$/;

/** The build id of an idempotency key: the same key, the same build. */
export const idempotentBuildId = (key: string): string =>
  `k-${createHash('sha256').update(key).digest('hex').slice(0, 40)}`;

/** The parts of a spec a request decides (not its creation time). */
const requested = (s: BuildSpec) =>
  JSON.stringify([
    s.pipeline,
    s.history,
    s.config,
    s.source,
    s.window ?? null,
    s.judge,
    s.redact,
    s.probe ?? null,
  ]);

interface FieldIssue {
  field: string;
  message: string;
}

const badRequest = (error: string, issues: FieldIssue[]): HttpResponseInit => ({
  status: 400,
  jsonBody: {
    error,
    message: issues.map((i) => `${i.field}: ${i.message}`).join('; '),
    issues,
  },
});

/** Reads and validates the body: the request, or the response that refuses it. */
export async function parseBuildRequest(
  request: HttpRequest,
  maxBytes: number,
): Promise<{ ok: true; value: BuildRequest } | { ok: false; response: HttpResponseInit }> {
  const tooLarge = (): { ok: false; response: HttpResponseInit } => ({
    ok: false,
    response: {
      status: 413,
      jsonBody: {
        error: 'body_too_large',
        message: `body: larger than the limit of ${maxBytes} bytes`,
        issues: [{ field: 'body', message: `larger than ${maxBytes} bytes` }],
      },
    },
  });
  const declared = Number(request.headers.get('content-length'));
  if (Number.isFinite(declared) && declared > maxBytes) return tooLarge();
  const text = await request.text();
  if (Buffer.byteLength(text, 'utf8') > maxBytes) return tooLarge();
  let body: unknown = {};
  if (text.trim() !== '') {
    try {
      body = JSON.parse(text);
    } catch {
      return {
        ok: false,
        response: badRequest('invalid_json', [{ field: 'body', message: 'is not valid JSON' }]),
      };
    }
  }
  const parsed = BuildRequestSchema.safeParse(body);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => {
      const keys = i.code === 'unrecognized_keys' ? i.keys : [];
      const path = [...i.path, ...(keys.length === 1 ? keys : [])].join('.');
      return {
        field: path || (keys.length > 0 ? keys.join(', ') : 'body'),
        message: i.message,
      };
    });
    return { ok: false, response: badRequest('invalid_request', issues) };
  }
  return { ok: true, value: parsed.data };
}

export function createStartBuild(deps: Deps) {
  return async function startBuildHandler(
    request: HttpRequest,
    context: InvocationContext,
  ): Promise<HttpResponseInit> {
    const key = request.headers.get('idempotency-key');
    if (key !== null && !IDEMPOTENCY_KEY.test(key))
      return badRequest('invalid_request', [
        {
          field: 'Idempotency-Key',
          message: 'must be 8-128 letters, digits or . _ : -',
        },
      ]);
    const parsed = await parseBuildRequest(request, deps.settings.maxBodyBytes);
    if (!parsed.ok) return parsed.response;
    const spec = specOfRequest(deps, key, parsed.value);
    deps.judgeFor(spec); // an unknown judge is a configuration error: fail before queuing
    const created = await startBuild(deps, spec);
    const statusUrl = new URL(`/api/builds/${spec.id}`, request.url).href;
    if (!created) return replayOrConflict(deps, spec, statusUrl, context);
    context.log(`build ${spec.id} started (${spec.pipeline}, total ${spec.config.total})`);
    return {
      status: 202,
      headers: { Location: statusUrl },
      jsonBody: { buildId: spec.id, state: 'planning', statusUrl },
    };
  };
}

/**
 * The spec of a requested build: the request over the configured defaults. Its id
 * derives from the idempotency key when there is one, else it is new.
 */
function specOfRequest(deps: Deps, key: string | null, request: BuildRequest): BuildSpec {
  const s = deps.settings;
  const now = deps.now();
  return buildSpecOf({
    id: key !== null ? idempotentBuildId(key) : newBuildId(now, deps.randomId()),
    createdAt: now.toISOString(),
    createdBy: 'http',
    request,
    ...specDefaultsOf(s),
  });
}

/**
 * A start whose build already exists (its idempotency key was used): 200 with the same
 * id when the stored build was made from the same request, else 409.
 */
async function replayOrConflict(
  deps: Deps,
  spec: BuildSpec,
  statusUrl: string,
  context: InvocationContext,
): Promise<HttpResponseInit> {
  const existing = await getSpec(deps, spec.id);
  if (!existing || requested(existing) !== requested(spec)) {
    return {
      status: 409,
      jsonBody: {
        error: 'idempotency_key_reused',
        message: 'Idempotency-Key: already used for a different request',
        issues: [{ field: 'Idempotency-Key', message: 'already used for a different request' }],
      },
    };
  }
  context.log(`build ${spec.id} already started under this idempotency key`);
  return {
    status: 200,
    headers: { Location: statusUrl },
    jsonBody: { buildId: spec.id, statusUrl, replayed: true },
  };
}
