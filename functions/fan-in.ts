/**
 * Fan-in (queue trigger on SFT_FANIN_QUEUE): when every batch is done or failed for
 * good, one fan-in balances all batch results with the core's streaming balancer
 * (order-independent: the dataset does not depend on which batch finished first)
 * and writes datasets/{buildId}/train.jsonl, manifest.json and datasets/latest.json.
 *
 * A wave-judged build comes here after each round: the fan-in then replays the wave
 * planner (functions/lib/wave-ops.ts) and queues the next wave's batches, or balances the
 * rows it selects.
 *
 * Exactly one publishes: a lease on a claim blob admits one fan-in at a time (it
 * lapses if its holder dies), outputs are deterministic overwrites, and a
 * create-only outcome.json is the commit; a later delivery finds it and stops.
 */
import type { InvocationContext } from '@azure/functions';
import { FaninMessageSchema, buildPaths, type BuildSpec, type Outcome } from '../shared/build/spec';
import { publishFacts, withRejudged } from '../shared/build/publish';
import { describeJudge } from '../shared/judge/types';
import { buildManifest, wavesReport } from '../shared/report/build-manifest';
import { profileRows } from '../shared/report/profile';
import {
  errorText,
  getOutcome,
  getPlan,
  getSpec,
  parseMessage,
  recordOutcome,
} from './lib/build-ops';
import type { Deps } from './lib/deps';
import {
  balanceResults,
  failBuild,
  readRound,
  updateLatest,
  writeDataset,
  writeManifest,
} from './lib/publish';
import { advanceWaves, type WaveDecision } from './lib/wave-ops';
import { probeStepToStore } from './lib/probe-step';
import { publishBuildFormats } from '../adapters/files/dataset-outputs';

/** Balances, writes the dataset and commits the outcome. Runs under the claim lease. */
async function publish(
  deps: Deps,
  spec: BuildSpec,
  context: InvocationContext,
): Promise<Outcome | null> {
  const ready = await roundReady(deps, spec, context);
  if (ready === null) return null;
  const { round, waves } = ready;
  const waved = waves?.kind === 'done' ? waves : null;
  const facts = publishFacts(spec, round, waved, describeJudge(deps.judgeFor(spec)));
  const { decision, sums } = facts;
  if (waves?.kind === 'fail') return failBuild(deps, spec, facts.sections, decision, waves.reason);
  if (!decision.publish) {
    const reason = decision.reason ?? 'not enough samples were judged';
    return failBuild(deps, spec, facts.sections, decision, reason);
  }
  const balanced = await balanceResults(deps, spec, round, sums, waved, context);
  const sections = withRejudged(facts.sections, balanced.rejudged);
  if ('reason' in balanced) return failBuild(deps, spec, sections, decision, balanced.reason);
  return publishBalanced(deps, spec, { sections, decision, balanced, waved }, context);
}

/**
 * The round's batches are all in (and, for a wave-judged build, no wave is left to
 * judge): the round and the wave step's result; null when the build must wait.
 */
async function roundReady(deps: Deps, spec: BuildSpec, context: InvocationContext) {
  const id = spec.id;
  const round = (await readRound(deps, id))!;
  if (!round.completion.complete) {
    context.log(`fan-in: build ${id} has ${round.completion.pending} batch(es) pending; not yet`);
    return null;
  }
  // A wave-judged build: the scan round is complete; judge the next wave, or balance.
  const waves = spec.waves
    ? await advanceWaves(deps, spec, round.completion.doneIds, context)
    : null;
  if (waves?.kind === 'wait' || waves?.kind === 'queued') {
    context.log(
      waves.kind === 'wait'
        ? `fan-in: build ${id} wave ${waves.wave} has ${waves.pending} batch(es) pending; not yet`
        : `fan-in: build ${id} wave ${waves.wave} queued`,
    );
    return null;
  }
  return { round, waves };
}

type Waved = Extract<WaveDecision, { kind: 'done' }> | null;
type BalancedOk = Extract<Awaited<ReturnType<typeof balanceResults>>, { result: unknown }>;

/** Writes the balanced dataset, runs the probe, writes the formats and the manifest, records the outcome. */
async function publishBalanced(
  deps: Deps,
  spec: BuildSpec,
  b: {
    sections: ReturnType<typeof withRejudged>;
    decision: ReturnType<typeof publishFacts>['decision'];
    balanced: BalancedOk;
    waved: Waved;
  },
  context: InvocationContext,
): Promise<Outcome> {
  const id = spec.id;
  const { sections, decision, balanced, waved } = b;
  const { result } = balanced;
  const { outputs, splitTexts } = await writeDataset(deps, spec, result, balanced.quarantine);
  // The router probe on the delivered dataset (docs/probe.md): its blobs join the dataset's.
  const probe = await probeStepToStore(
    deps.store,
    buildPaths(id).datasetPrefix,
    {
      train: result.train,
      ...(spec.config.validation > 0 ? { validation: result.validation } : {}),
    },
    spec.probe,
  );
  Object.assign(outputs, probe.outputs);
  context.log(`fan-in: build ${id} ${probe.lines.join('\n')}`);
  if (probe.failure)
    return failBuild(deps, spec, sections, decision, probe.failure, probe.manifest);
  deps.failpoint('fanin:written');
  const delivered = [...result.train, ...result.validation, ...result.test];
  const manifest = buildManifest({
    status: 'succeeded',
    command: 'build',
    sections,
    ...(waved ? { waves: wavesReport(waved.planner, delivered) } : {}),
    balance: result.manifest,
    profile: { before: balanced.before, after: profileRows(spec.config, delivered) },
    extra: probe.manifest,
    outputs,
  });
  // The other formats and the card, as blobs beside the dataset (same bytes as in process).
  const formats = await publishBuildFormats(
    (rel, data) => deps.store.put(`${buildPaths(id).datasetPrefix}${rel}`, data),
    splitTexts,
    manifest,
    spec.config,
  );
  if (formats) {
    Object.assign(outputs, formats.outputs);
    manifest.formats = formats.section;
  }
  await writeManifest(deps, id, manifest, context);
  return commitOutcome(deps, id, decision, result.manifest.selected.total, context);
}

/** The build succeeded: its outcome recorded (or the one already there, when another delivery won). */
async function commitOutcome(
  deps: Deps,
  id: string,
  decision: ReturnType<typeof publishFacts>['decision'],
  selected: number,
  context: InvocationContext,
): Promise<Outcome> {
  const outcome: Outcome = {
    buildId: id,
    state: 'succeeded',
    stage: 'fanin',
    completedAt: deps.now().toISOString(),
    judgedShare: decision.judgedShare,
    samplesLost: decision.samplesLost,
    selected,
  };
  await recordOutcome(deps, outcome);
  context.log(`fan-in: build ${id} published ${outcome.selected} samples`);
  return (await getOutcome(deps, id)) ?? outcome;
}

export function createFanin(deps: Deps) {
  return async function faninHandler(message: unknown, context: InvocationContext): Promise<void> {
    const msg = parseMessage(FaninMessageSchema, message, context);
    if (!msg) return;
    const spec = await getSpec(deps, msg.buildId);
    if (!spec) {
      context.error(`fan-in: no build ${msg.buildId}; dropping the message`);
      return;
    }
    const p = buildPaths(spec.id);
    const existing = await getOutcome(deps, spec.id);
    if (existing) {
      await updateLatest(deps, existing); // an earlier fan-in may have stopped before this
      return;
    }
    const plan = await getPlan(deps, spec.id);
    if (!plan) return;
    await deps.store.create(p.faninClaim, JSON.stringify({ buildId: spec.id }));
    const seconds = deps.settings.faninLeaseSeconds;
    const lease = await deps.store.acquireLease(p.faninClaim, seconds);
    if (!lease) {
      // Another fan-in holds the claim. Come back when its lease could have lapsed;
      // a fresh message, so waiting does not use up this one's deliveries.
      await deps.queues.send(deps.settings.queues.fanin, msg, { delaySeconds: seconds });
      context.log(`fan-in: build ${spec.id} is claimed; retrying in ${seconds} s`);
      return;
    }
    const renew = setInterval(
      () => {
        lease
          .renew()
          .catch((err: unknown) => context.warn(`fan-in: lease renewal failed: ${errorText(err)}`));
      },
      (seconds * 1000) / 3,
    );
    try {
      if (await getOutcome(deps, spec.id)) return;
      deps.failpoint('fanin:claimed');
      const outcome = await publish(deps, spec, context);
      if (outcome) await updateLatest(deps, outcome);
    } finally {
      clearInterval(renew);
      await lease.release().catch(() => undefined);
    }
  };
}
