/**
 * POST /api/builds: starts a build with the configured defaults, overridden by the
 * body. 202 with the build id and its status URL (also in Location); 400 naming the
 * bad field; 413 over the size limit.
 */
import type { HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import { BuildRequestSchema, buildSpecOf, newBuildId, type BuildRequest } from '../shared/build';
import { startBuild } from './build-ops';
import type { Deps } from './deps';

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
    const parsed = await parseBuildRequest(request, deps.settings.maxBodyBytes);
    if (!parsed.ok) return parsed.response;
    const s = deps.settings;
    const now = deps.now();
    const spec = buildSpecOf({
      id: newBuildId(now, deps.randomId()),
      createdAt: now.toISOString(),
      createdBy: 'http',
      request: parsed.value,
      defaults: s.defaults,
      source: s.source,
      judge: s.judge,
      minJudgedShare: s.minJudgedShare,
      shardBytes: s.shardBytes,
      maxShards: s.maxShards,
      redact: s.redact,
    });
    deps.judgeFor(spec); // an unknown judge is a configuration error: fail before queuing
    await startBuild(deps, spec);
    const statusUrl = new URL(`/api/builds/${spec.id}`, request.url).href;
    context.log(`build ${spec.id} started (${spec.pipeline}, total ${spec.config.total})`);
    return {
      status: 202,
      headers: { Location: statusUrl },
      jsonBody: { buildId: spec.id, state: 'planning', statusUrl },
    };
  };
}
