/**
 * The scheduled build: a timer (SFT_SCHEDULE, weekly by default) starts a build with
 * the configured defaults. The id derives from the schedule slot, so a timer that
 * fires twice for one slot starts one build.
 */
import type { InvocationContext, Timer } from '@azure/functions';
import { buildSpecOf, scheduledBuildId } from '../shared/build/spec';
import { specDefaultsOf } from '../shared/build/settings';
import { startBuild } from './lib/build-ops';
import type { Deps } from './lib/deps';

export function createScheduledBuild(deps: Deps) {
  return async function scheduledBuildHandler(
    timer: Timer,
    context: InvocationContext,
  ): Promise<void> {
    const now = deps.now();
    const slot = new Date(Math.floor(now.getTime() / 60_000) * 60_000);
    const s = deps.settings;
    const spec = buildSpecOf({
      id: scheduledBuildId(slot),
      createdAt: now.toISOString(),
      createdBy: 'timer',
      request: {},
      ...specDefaultsOf(s),
    });
    const created = await startBuild(deps, spec);
    context.log(
      created
        ? `scheduled build ${spec.id} started${timer.isPastDue ? ' (timer was past due)' : ''}`
        : `scheduled build ${spec.id} already exists`,
    );
  };
}
