/**
 * The local runner behind `sft-balancer run`: the Functions app on this machine,
 * without Core Tools. It starts an embedded Azurite (a child process) unless given
 * --storage, uploads the telemetry, starts a build, serves the registered queue
 * handlers with the host's semantics (adapters/local/queue-host.ts, settings from
 * host.json), shows progress, and downloads the outputs.
 *
 * Re-running the same command against the same storage resumes the same build: its
 * id derives from the input's sha256 and the build settings, and the queues hold
 * whatever was in flight when the last runner stopped.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { startAzurite, type AzuriteHandle } from '../adapters/local/azurite';
import { join, withOutputDir, writeJson } from '../adapters/files/output';
import { InputFileError } from '../adapters/files/lines';
import { LocalQueueHost } from '../adapters/local/queue-host';
import { readQueueHostConfig } from '../adapters/storage/host-config';
import {
  getOutcome,
  getSpec,
  readStatus,
  resumeBuild,
  startBuild,
} from '../functions/lib/build-ops';
import { createDeps, REPLAY_JUDGE, type Deps } from '../functions/lib/deps';
import { registrations, type QueueFunction } from '../functions/registry';
import { buildPaths, buildSpecOf, type BuildSpec, type Outcome } from '../shared/build/spec';
import type { WaveSettingsInput } from '../shared/waves/planner';
import type { BalanceConfig } from '../shared/contracts/config';
import { BalanceError } from '../shared/errors/index';
import { fingerprint } from '../shared/util/hash';
import type { HistoryOptions, Pipeline } from '../shared/samples/assemble';
import { SettingsError, loadSettings, type Settings } from '../shared/build/settings';
import { UnknownJudgeError } from '../functions/lib/judges';
import { UsageError, buildIdFlag } from './args';
import { poisonQueueOf } from '../shared/build/settings';
import { statusOf } from '../adapters/storage/clients';
import type { SourceRef } from '../shared/source/ref';
import { JUDGE_REFUSED } from '../functions/judge-batch';
import { JudgeConfigError } from '../shared/judge/llm';
import { Progress } from './progress';

/** The build ended failed (min judged share, no rows, shortfall with `fail`...). */
export class BuildFailedError extends BalanceError {}

export interface LocalRunOptions {
  /** The telemetry file; absent when `source` names another source (kusto:QUERY). */
  input?: string;
  /** A source other than the input file, read by the plan step as the app reads it. */
  source?: SourceRef;
  /** What identifies that source's data for the build id (query, cluster, window). */
  sourceIdentity?: string;
  out: string;
  pipeline: Pipeline;
  history: HistoryOptions;
  config: BalanceConfig;
  /** A storage connection string; absent: an embedded Azurite for this run. */
  storage?: string;
  buildId?: string;
  /** Upload the input to blob storage (default); false reads the local file in place. */
  upload?: boolean;
  quiet: boolean;
  verbose?: boolean;
  /** Host instances serving the queues (this process plus N-1 forked ones); default 1. */
  instances?: number;
  /** Settings come from here (default process.env); AzureWebJobsStorage is set by the runner. */
  env?: Record<string, string | undefined>;
  /** Yield-aware judging with these settings (otherwise SFT_WAVES decides). */
  waves?: WaveSettingsInput;
}

export interface LocalRunResult {
  buildId: string;
  outcome: Outcome;
  manifest: Record<string, unknown>;
  manifestPath: string;
  resumed: boolean;
}

/** SFT_FAILPOINT=name[:n]: the process kills itself (SIGKILL) at the n-th pass of `name`. */
export function failpointFrom(spec: string | undefined): (name: string) => void {
  if (!spec) return () => {};
  const m = /^(.*?)(?::(\d+))?$/.exec(spec)!;
  const name = m[1];
  let left = Number(m[2] ?? 1);
  return (point) => {
    if (point !== name || --left > 0) return;
    process.stderr.write(`failpoint ${point}: killing the runner\n`);
    process.kill(process.pid, 'SIGKILL');
  };
}

/** The input's JSONL bytes: `*.gz` gunzipped (as `run --in-process` reads it). */
function inputStream(path: string): Readable {
  const raw = createReadStream(path, { highWaterMark: 1 << 20 });
  if (!path.endsWith('.gz')) return raw;
  const gunzip = createGunzip({ chunkSize: 1 << 20 });
  raw.on('error', (err) => gunzip.destroy(err));
  return raw.pipe(gunzip);
}

const inputError = (path: string, cause: unknown) => {
  const code = (cause as { code?: unknown }).code;
  return new InputFileError(
    typeof code === 'string' && code.startsWith('Z_')
      ? `input file is not valid gzip: ${path}`
      : `input file not found or unreadable: ${path}`,
    { cause },
  );
};

/** The sha256 of the input's JSONL (of the gunzipped bytes for `*.gz`). */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  try {
    for await (const chunk of inputStream(path)) hash.update(chunk as Buffer);
  } catch (cause) {
    throw inputError(path, cause);
  }
  return hash.digest('hex');
}

/**
 * Two specs of one build: the same settings, and the same uploaded input when both
 * name one (a blob named by its sha256; a local file read in place has no such name).
 */
const sameBuild = (a: BuildSpec, b: BuildSpec) => {
  const bothBlobs = a.source.kind === 'blob' && b.source.kind === 'blob';
  const identity = (s: BuildSpec) =>
    JSON.stringify({ ...s, createdAt: '', source: bothBlobs ? s.source : '' });
  return identity(a) === identity(b);
};

/** How often the runner looks for a stalled build (ms) and how many looks in a row. */
const STALL_CHECK_MS = 2_000;
const STALL_LOOKS = 2;

/** The id of a local build: the same input and settings give the same id. */
export function localBuildId(sha: string, spec: BuildSpec, replaySource?: string): string {
  const identity = {
    ...(replaySource !== undefined ? { replaySource } : {}),
    sha,
    pipeline: spec.pipeline,
    history: spec.history,
    config: spec.config,
    judge: spec.judge,
    window: spec.window ?? null,
    minJudgedShare: spec.minJudgedShare,
    shardBytes: spec.shardBytes,
    maxShards: spec.maxShards,
    ...(spec.waves ? { waves: spec.waves } : {}),
    // Only when not the default (on, advising): ids of earlier builds stay what they were.
    ...(spec.probe ? { probe: spec.probe } : {}),
  };
  return `local-${fingerprint(JSON.stringify(identity))}`;
}

/**
 * A build's dataset (train.jsonl, manifest.json, quarantine.jsonl, ...) and its status
 * downloaded into `out`, built in a staging directory and swapped in whole: `out` holds
 * this build's set only. Used by `run` and by `download` (a build `serve` started).
 */
export async function downloadBuild(
  deps: Deps,
  buildId: string,
  out: string,
  status: unknown,
): Promise<void> {
  const p = buildPaths(buildId);
  await withOutputDir(out, async (dir) => {
    for (const name of await deps.store.list(p.datasetPrefix)) {
      const file = join(dir, name.slice(p.datasetPrefix.length));
      // The formats sit in folders (chat/, classifier/, data/).
      await mkdir(dirname(file), { recursive: true });
      await deps.store.downloadToFile(name, file);
    }
    await writeJson(join(dir, 'status.json'), status);
  });
}

const queueFunctions = (deps: Deps) =>
  registrations(deps).filter((r): r is QueueFunction => r.kind === 'queue');

/** Writes a line to stderr unless the run is quiet. */
type Say = (text: string) => void;

export async function runLocal(opts: LocalRunOptions): Promise<LocalRunResult> {
  let azurite: AzuriteHandle | undefined;
  const t0 = Date.now();
  const say: Say = (text) => {
    if (!opts.quiet) process.stderr.write(`${text}\n`);
  };
  try {
    if (opts.buildId !== undefined) buildIdFlag(opts.buildId);
    const sha = opts.source
      ? fingerprint(opts.sourceIdentity ?? JSON.stringify(opts.source))
      : await sha256File(opts.input ?? '');
    if (!opts.storage) {
      azurite = await startAzurite();
      say(`azurite: blob ${azurite.blobEndpoint}, queue ${azurite.queueEndpoint}`);
    }
    const env = opts.env ?? process.env;
    const settings = settingsOf(env, opts.storage ?? azurite!.connectionString);
    const deps = createDeps(settings, { failpoint: failpointFrom(env.SFT_FAILPOINT) }, env);
    await deps.store.ensureContainer();
    const source = await uploadInput(deps, opts, sha, say);
    const spec = localSpec(opts, settings, env, sha, source);
    const created = await startOrResume(deps, spec, say);
    const { outcome, status } = await serveUntilOutcome(deps, spec, opts, env, t0);
    const manifest = await finishRun(deps, spec, opts, outcome, status);
    const manifestPath = join(opts.out, 'manifest.json');
    return { buildId: spec.id, outcome, manifest, manifestPath, resumed: !created };
  } finally {
    await azurite?.stop();
  }
}

/** The settings from the environment, on this run's storage; a bad setting is a usage error. */
function settingsOf(env: Record<string, string | undefined>, storage: string): Settings {
  try {
    return loadSettings({ ...env, AzureWebJobsStorage: storage });
  } catch (err) {
    if (err instanceof SettingsError) throw new UsageError(err.message);
    throw err;
  }
}

/**
 * Uploads the input (unless the run reads another source, or the file in place) and
 * returns the build's source reference.
 * Content-addressed (the JSONL's sha256) and create-only: two runs uploading the
 * same input never interleave, and the first whole upload is the one kept.
 */
async function uploadInput(
  deps: Deps,
  opts: LocalRunOptions,
  sha: string,
  say: Say,
): Promise<BuildSpec['source']> {
  if (opts.source) return opts.source;
  if (!(opts.upload ?? true)) return { kind: 'file', path: resolve(opts.input ?? '') };
  const sourcePath = `sources/${sha}.jsonl`;
  if (!(await deps.store.exists(sourcePath))) {
    const started = Date.now();
    let created: boolean;
    try {
      created = await deps.store.createFromStream(sourcePath, inputStream(opts.input!));
    } catch (err) {
      if (statusOf(err) !== undefined) throw err;
      throw inputError(opts.input!, err);
    }
    say(
      `upload: ${opts.input!} → ${deps.settings.container}/${sourcePath} (${Date.now() - started} ms` +
        `${created ? '' : ', already uploaded by another run'})`,
    );
  }
  return { kind: 'blob', path: sourcePath };
}

/**
 * The run's build spec: the flags over the settings' defaults; its id is --build-id or
 * derives from the input, the spec and the replayed labels (the same run, the same id).
 */
function localSpec(
  opts: LocalRunOptions,
  settings: Settings,
  env: Record<string, string | undefined>,
  sha: string,
  source: BuildSpec['source'],
): BuildSpec {
  const base = buildSpecOf({
    id: 'pending',
    createdAt: new Date().toISOString(),
    createdBy: 'cli',
    request: { pipeline: opts.pipeline },
    defaults: {
      ...settings.defaults,
      historyTurns: opts.history.historyTurns,
      historyTokens: opts.history.historyTokenBudget,
    },
    source,
    judge: settings.judge,
    minJudgedShare: settings.minJudgedShare,
    shardBytes: settings.shardBytes,
    maxShards: settings.maxShards,
    config: opts.config,
    redact: settings.redact,
    probe: settings.probe,
    ...(opts.waves ? { waves: opts.waves } : {}),
  });
  const replay =
    settings.judge.name === REPLAY_JUDGE ? resolve(env.JUDGE_REPLAY_SOURCE ?? '') : undefined;
  return { ...base, id: opts.buildId ?? localBuildId(sha, base, replay) };
}

/**
 * Starts the build, or resumes the one of the same id (refused when it was made from
 * another input or other settings). True when this run started it.
 */
async function startOrResume(deps: Deps, spec: BuildSpec, say: Say): Promise<boolean> {
  try {
    deps.judgeFor(spec);
  } catch (err) {
    if (err instanceof UnknownJudgeError) throw new UsageError(`SFT_JUDGE: ${err.message}`);
    throw err;
  }
  const created = await startBuild(deps, spec);
  if (!created) {
    const existing = await getSpec(deps, spec.id);
    if (existing && !sameBuild(existing, spec))
      throw new UsageError(
        `--build-id ${spec.id}: the storage holds a build of that id with another input or ` +
          `other settings; give another --build-id (or none: one derives from the input)`,
      );
  }
  if (!created) say(`build ${spec.id}: exists, resuming (${await resumeBuild(deps, spec.id)})`);
  else say(`build ${spec.id}: started (${spec.pipeline}, total ${spec.config.total})`);
  return created;
}

/**
 * Serves the build's queues (this process and `instances - 1` forked ones) until the
 * build has its outcome, drawing progress; stops every host on the way out. Returns
 * the outcome and the build's status then.
 */
async function serveUntilOutcome(
  deps: Deps,
  spec: BuildSpec,
  opts: LocalRunOptions,
  env: Record<string, string | undefined>,
  t0: number,
): Promise<{ outcome: Outcome; status: Awaited<ReturnType<typeof readStatus>> }> {
  const leaseSeconds = Number(env.SFT_RUNNER_LEASE_SECONDS ?? 30);
  const host = new LocalQueueHost({
    service: deps.clients.queues,
    functions: queueFunctions(deps),
    config: readQueueHostConfig(),
    leaseSeconds: Number.isFinite(leaseSeconds) && leaseSeconds >= 1 ? leaseSeconds : 30,
    log: (level, fn, text) => {
      if (opts.quiet) return;
      if (opts.verbose || level === 'error' || level === 'warning')
        process.stderr.write(`[${((Date.now() - t0) / 1000).toFixed(1)} s] [${fn}] ${text}\n`);
    },
  });
  const progress = new Progress(`build ${spec.id}`, opts.quiet);
  host.start();
  const workers = forkWorkers(deps.settings, env, opts.instances ?? 1);
  let outcome: Outcome;
  try {
    outcome = await waitForOutcome(deps, spec, progress);
  } finally {
    await Promise.all([host.stop(), ...workers.map(stopWorker)]);
  }
  const status = await readStatus(deps, spec.id);
  progress.done(
    `${outcome.state}: ${status?.progress.judged ?? 0} batch(es) judged, ${status?.progress.failed ?? 0} failed` +
      (outcome.reason ? ` (${outcome.reason})` : ''),
  );
  return { outcome, status };
}

/** The extra host instances: forked runner workers on the same storage. */
function forkWorkers(
  settings: Settings,
  env: Record<string, string | undefined>,
  instances: number,
): ChildProcess[] {
  const workers: ChildProcess[] = [];
  for (let i = 1; i < instances; i++) {
    workers.push(
      fork(join(__dirname, 'local-runner-worker.js'), [], {
        env: {
          ...env,
          AzureWebJobsStorage:
            settings.storage.kind === 'connectionString' ? settings.storage.connectionString : '',
          SFT_FAILPOINT: '',
        },
        stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
      }),
    );
  }
  return workers;
}

/** Asks a forked worker to stop; resolves once it has exited. */
const stopWorker = (w: ChildProcess) =>
  new Promise<void>((done) => {
    if (w.exitCode !== null) return done();
    w.once('exit', () => done());
    w.send('stop');
  });

/**
 * Polls for the build's outcome, drawing progress. A build with nothing on any of its
 * queues and no outcome can never end (a message dropped as malformed, or lost):
 * after a few looks in a row the run fails.
 */
async function waitForOutcome(deps: Deps, spec: BuildSpec, progress: Progress): Promise<Outcome> {
  let idleLooks = 0;
  let lastLook = Date.now();
  for (let tick = 0; ; tick++) {
    const outcome = await getOutcome(deps, spec.id);
    if (outcome) return outcome;
    if (Date.now() - lastLook >= STALL_CHECK_MS) {
      lastLook = Date.now();
      idleLooks = (await queuedMessages(deps)) === 0 ? idleLooks + 1 : 0;
      if (idleLooks >= STALL_LOOKS && !(await getOutcome(deps, spec.id)))
        throw new BuildFailedError(
          `build ${spec.id} stalled: no message left on its queues and no outcome ` +
            `(a message was dropped; see the log above)`,
        );
    }
    // The progress line reads the status document GET /api/builds/{id} serves (the
    // same per-stage counters), once a second and only when it is drawn.
    if (progress.active && tick % 4 === 0) drawProgress(progress, await readStatus(deps, spec.id));
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Messages waiting on the build's queues and their poison queues (1 when it cannot tell). */
async function queuedMessages(deps: Deps): Promise<number> {
  const q = deps.settings.queues;
  const queueNames = [q.plan, q.shards, q.fanin];
  let n = 0;
  for (const name of [...queueNames, ...queueNames.map(poisonQueueOf)]) {
    try {
      const props = await deps.clients.queues.getQueueClient(name).getProperties();
      n += props.approximateMessagesCount ?? 0;
    } catch (err) {
      if (statusOf(err) !== 404) return 1; // cannot tell: assume work is left
    }
  }
  return n;
}

/** The progress line from the build's status: batches of the wave, or of the build. */
function drawProgress(progress: Progress, status: Awaited<ReturnType<typeof readStatus>>): void {
  if (status?.waves && status.waves.wave > 0) {
    const { wave, batches, judged } = status.waves;
    progress.update(
      batches.done + batches.failed,
      batches.planned,
      `batches of wave ${wave} · ${judged.toLocaleString('en-US')} judged · ` +
        `${status.counts.labelled.toLocaleString('en-US')} labelled` +
        (batches.failed ? ` · ${batches.failed} failed` : ''),
    );
  } else if (status && status.progress.planned !== null) {
    const { judged, failed, planned } = status.progress;
    progress.update(
      judged + failed,
      planned,
      `${status.waves ? 'batches read (scan)' : 'batches'} · ${status.state} · ` +
        `${status.counts.labelled.toLocaleString('en-US')} labelled` +
        (failed ? ` · ${failed} failed` : ''),
    );
  }
}

/**
 * Downloads the build into `out` and returns its manifest; a failed build throws with
 * its reason. The judge refused the credentials (a 401/403, no token): that one line,
 * and nothing written to `out` (no build can succeed until the credential is fixed).
 */
async function finishRun(
  deps: Deps,
  spec: BuildSpec,
  opts: LocalRunOptions,
  outcome: Outcome,
  status: Awaited<ReturnType<typeof readStatus>>,
): Promise<Record<string, unknown>> {
  const refused = status?.errors.find((e) => e.reason.startsWith(JUDGE_REFUSED));
  if (outcome.state === 'failed' && refused)
    throw new JudgeConfigError(refused.reason.slice(JUDGE_REFUSED.length));
  await downloadBuild(deps, spec.id, opts.out, status);
  const manifestBuf = await deps.store.get(buildPaths(spec.id).manifest);
  const manifest = manifestBuf
    ? (JSON.parse(manifestBuf.toString('utf8')) as Record<string, unknown>)
    : {};
  if (outcome.state === 'failed') {
    // Say when rows were set aside: "no sample was judged" alone hides a runaway line.
    const quarantined = status?.counts.quarantined ?? 0;
    throw new BuildFailedError(
      `build ${spec.id} failed: ${outcome.reason ?? 'see status.json'}` +
        (quarantined > 0
          ? `; ${quarantined} line(s) quarantined (see ${join(opts.out, 'quarantine.jsonl')})`
          : ''),
    );
  }
  return manifest;
}
