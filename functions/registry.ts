/**
 * Every function of the app, as data: functions/index.ts registers them with the
 * Functions host, and the local runner serves the same list from Azurite's queues.
 */
import type {
  HttpHandler,
  InvocationContext,
  StorageQueueHandler,
  TimerHandler,
} from '@azure/functions';
import { poisonQueueOf } from '../shared/build/settings';
import { createBuildStatus } from './build-status';
import type { Deps } from './lib/deps';
import { createFanin } from './fan-in';
import { createJudgeBatch } from './judge-batch';
import { createPlanBuild } from './plan-build';
import { createScheduledBuild } from './scheduled-build';
import { createShardPoison, createStagePoison } from './stage-poison';
import { createStartBuild } from './start-build';
import { withStructuredLogs } from './lib/logging';

export interface QueueFunction {
  kind: 'queue';
  name: string;
  queueName: string;
  handler: StorageQueueHandler;
}
export interface HttpFunction {
  kind: 'http';
  name: string;
  route: string;
  methods: ('GET' | 'POST')[];
  authLevel: 'function';
  handler: HttpHandler;
}
export interface TimerFunction {
  kind: 'timer';
  name: string;
  schedule: string;
  handler: TimerHandler;
}
export type FunctionRegistration = QueueFunction | HttpFunction | TimerFunction;

/** The app's functions, bound to `deps`. */
export function registrations(deps: Deps): FunctionRegistration[] {
  const q = deps.settings.queues;
  const list: FunctionRegistration[] = [
    {
      kind: 'timer',
      name: 'scheduledBuild',
      schedule: deps.settings.schedule,
      handler: createScheduledBuild(deps),
    },
    {
      kind: 'http',
      name: 'startBuild',
      route: 'builds',
      methods: ['POST'],
      authLevel: 'function',
      handler: createStartBuild(deps),
    },
    {
      kind: 'http',
      name: 'buildStatus',
      route: 'builds/{id}',
      methods: ['GET'],
      authLevel: 'function',
      handler: createBuildStatus(deps),
    },
    { kind: 'queue', name: 'planBuild', queueName: q.plan, handler: createPlanBuild(deps) },
    { kind: 'queue', name: 'judgeBatch', queueName: q.shards, handler: createJudgeBatch(deps) },
    { kind: 'queue', name: 'fanIn', queueName: q.fanin, handler: createFanin(deps) },
    {
      kind: 'queue',
      name: 'planPoison',
      queueName: poisonQueueOf(q.plan),
      handler: createStagePoison(deps, 'plan'),
    },
    {
      kind: 'queue',
      name: 'judgeBatchPoison',
      queueName: poisonQueueOf(q.shards),
      handler: createShardPoison(deps),
    },
    {
      kind: 'queue',
      name: 'fanInPoison',
      queueName: poisonQueueOf(q.fanin),
      handler: createStagePoison(deps, 'fanin'),
    },
  ];
  // Every line a handler logs carries its build id and batch id (functions/logging.ts).
  return list.map(
    (r) =>
      ({
        ...r,
        handler: withStructuredLogs(r.handler as (t: unknown, c: InvocationContext) => unknown),
      }) as FunctionRegistration,
  );
}
