/**
 * GET /api/builds/{id}: state, progress per stage, counts so far, errors, and the
 * outputs once the build has ended; 404 for an unknown id.
 */
import type { HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import { BuildIdSchema } from '../shared/build/spec';
import { readStatus } from './lib/build-ops';
import type { Deps } from './lib/deps';

export function createBuildStatus(deps: Deps) {
  return async function buildStatusHandler(
    request: HttpRequest,
    _context: InvocationContext,
  ): Promise<HttpResponseInit> {
    const id = request.params.id ?? '';
    const notFound = { status: 404, jsonBody: { error: 'not_found', message: `no build "${id}"` } };
    if (!BuildIdSchema.safeParse(id).success) return notFound;
    const status = await readStatus(deps, id);
    if (!status) return notFound;
    if (status.outputs) {
      status.outputs = Object.fromEntries(
        Object.entries(status.outputs).map(([k, path]) => [k, deps.store.url(path)]),
      );
    }
    return { status: 200, jsonBody: status };
  };
}
