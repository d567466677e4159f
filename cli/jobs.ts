/**
 * File-based jobs behind the CLI: the core's steps wired to local files.
 */
import {
  ensureDir,
  join,
  JsonlWriter,
  writeJson,
  writeJsonl,
  type FileDigest,
} from '../adapters/files/output';
import { loadRanges, readFileLines } from '../adapters/files/lines';
import { balanceFileParallel } from '../adapters/files/parallel-balance';
import { annotateSamples } from '../shared/judge/annotate';
import {
  StreamingBalancer,
  type BalanceManifest,
  type BalanceResult,
  type RangeLoader,
  type QuarantineRecord,
} from '../shared/balance/balancer';
import type { TelemetryTurn } from '../shared/contracts/rows';
import { parseTelemetryLine } from '../shared/build/batch';
import { MAX_LINE_BYTES } from '../shared/build/spec';
import { Redactor } from '../shared/samples/redact';
import type { BalanceConfig } from '../shared/contracts/config';
import type { Judge } from '../shared/judge/types';
import {
  ConversationAssembler,
  type HistoryOptions,
  type Pipeline,
} from '../shared/samples/assemble';
import { Progress } from './progress';
import { NoValidRowsError } from '../shared/errors/index';
import { writeReport } from '../adapters/files/report';
import { ProfileBuilder, profileRows, type Profile } from '../shared/report/profile';
import type { WaveSettingsInput } from '../shared/waves/planner';
import { judgeWaves } from '../shared/waves/judge';

const TOOL = { name: 'sft-balancer', version: '0.1.0' };

export interface JobResult {
  manifest: Record<string, unknown>;
  manifestPath: string;
}

async function writeDataset(
  outDir: string,
  balancer: StreamingBalancer,
  quarantine: JsonlWriter,
  extra: Record<string, unknown>,
  finish?: () => Promise<BalanceResult>,
  more: { before?: Profile; outputs?: Record<string, FileDigest>; load?: RangeLoader } = {},
): Promise<JobResult> {
  const quarantineDigest = await quarantine.close();
  const outputs: Record<string, FileDigest> = {};
  let result: BalanceResult;
  let after: Profile;
  if (finish) {
    result = await finish();
    outputs['train.jsonl'] = await writeJsonl(join(outDir, 'train.jsonl'), result.train);
    if (balancer.config.validation > 0) {
      outputs['validation.jsonl'] = await writeJsonl(
        join(outDir, 'validation.jsonl'),
        result.validation,
      );
    }
    after = profileRows(balancer.config, [...result.train, ...result.validation]);
  } else {
    // Streamed: each line is written and profiled as it is made, never all held at once.
    const train = new JsonlWriter(join(outDir, 'train.jsonl'));
    const validation =
      balancer.config.validation > 0 ? new JsonlWriter(join(outDir, 'validation.jsonl')) : null;
    const profiler = new ProfileBuilder(balancer.config);
    result = await balancer.finishInto((line, split) => {
      (split === 'validation' && validation ? validation : train).write(line);
      profiler.add(line);
    }, more.load);
    outputs['train.jsonl'] = await train.close();
    if (validation) outputs['validation.jsonl'] = await validation.close();
    after = profiler.snapshot();
  }
  outputs['quarantine.jsonl'] = quarantineDigest;
  Object.assign(outputs, more.outputs);
  const before = more.before;
  const profile = { ...(before ? { before } : {}), after };
  const manifest = { tool: TOOL, ...extra, ...result.manifest, profile, outputs };
  const manifestPath = join(outDir, 'manifest.json');
  await writeJson(manifestPath, manifest);
  await writeReport(outDir, manifest);
  return { manifest, manifestPath };
}

/** `balance`: annotated JSONL in, a balanced dataset and its manifest out. */
export async function balanceFile(
  input: string,
  outDir: string,
  config: BalanceConfig,
  opts: { quiet: boolean; threads?: number },
): Promise<JobResult> {
  await ensureDir(outDir);
  const quarantine = new JsonlWriter(join(outDir, 'quarantine.jsonl'));
  const progress = new Progress('balance', opts.quiet);
  const balancer = await balanceFileParallel(input, config, {
    ...(opts.threads !== undefined ? { threads: opts.threads } : {}),
    onQuarantine: (q) => quarantine.write(q),
    onProgress: (rows) => progress.update(rows, undefined, 'rows read'),
  });
  const p = balancer.progress;
  progress.done(`${p.rows.toLocaleString('en-US')} rows read, ${p.quarantined} quarantined`);
  return writeDataset(
    outDir,
    balancer,
    quarantine,
    { command: 'balance', source: input },
    undefined,
    // Gzipped input is read in one pass with lines kept; plain files are re-read by byte range.
    input.endsWith('.gz') ? {} : { load: (ranges) => loadRanges(input, ranges) },
  );
}

export interface RunOptions {
  pipeline: Pipeline;
  history: HistoryOptions;
  judge: Judge;
  batchSize: number;
  quiet: boolean;
  /** Redact secrets and personal data before judging and writing (default on). */
  redact?: boolean;
  /** Yield-aware judging in waves (shared/waves.ts) instead of judging every sample. */
  waves?: WaveSettingsInput;
}

/**
 * Reads and validates telemetry turns, quarantining bad ones; the same check and
 * redaction as the functions' judge batch (parseTelemetryLine).
 */
async function readTelemetry(
  input: string,
  config: BalanceConfig,
  onTurn: (t: TelemetryTurn) => void,
  onBad: (q: QuarantineRecord) => void,
  progress: Progress,
  redactor: Redactor,
): Promise<{ invalidUtf8Lines: number }> {
  let invalidUtf8Lines = 0;
  // A line over MAX_LINE_BYTES is read only that far (memory of the limit, whatever its
  // size) and quarantined line_too_long with its size; invalid UTF-8 is kept and counted.
  await readFileLines(
    input,
    (line, lineNo, _at, len, badUtf8) => {
      if ((lineNo & 0x3fff) === 0) progress.update(lineNo, undefined, 'rows read');
      if (badUtf8 && len <= MAX_LINE_BYTES) invalidUtf8Lines++;
      // Cut short (see readFileLines): the line's whole size goes into the detail.
      const cut = len > MAX_LINE_BYTES + 1 ? len : undefined;
      const r = parseTelemetryLine(line, lineNo, config.maxMessageChars, redactor, cut);
      if (r === null) return;
      if ('quarantine' in r) onBad(r.quarantine);
      else onTurn(r.turn);
    },
    undefined,
    { maxLineBytes: MAX_LINE_BYTES, checkUtf8: true },
  );
  return { invalidUtf8Lines };
}

/** `run`: telemetry → samples → judge → balance, in one process. */
export async function runPipeline(
  input: string,
  outDir: string,
  config: BalanceConfig,
  opts: RunOptions,
): Promise<JobResult> {
  await ensureDir(outDir);
  const balancer = new StreamingBalancer(config);
  const quarantine = new JsonlWriter(join(outDir, 'quarantine.jsonl'));
  const assembler = new ConversationAssembler();
  const readProgress = new Progress('read', opts.quiet);
  const redactor = new Redactor({ enabled: opts.redact ?? true });
  let turns = 0;
  const quarantinedByReason: Record<string, number> = {};
  const read = await readTelemetry(
    input,
    config,
    (t) => {
      turns++;
      assembler.add(t);
    },
    (q) => {
      balancer.recordQuarantine(q.reason);
      quarantinedByReason[q.reason] = (quarantinedByReason[q.reason] ?? 0) + 1;
      quarantine.write(q);
    },
    readProgress,
    redactor,
  );
  const { samples, stats } = assembler.samples(opts.pipeline, opts.history);
  readProgress.done(
    `${turns.toLocaleString('en-US')} valid turns, ${stats.complete.toLocaleString('en-US')} complete conversations, ` +
      `${samples.length.toLocaleString('en-US')} ${opts.pipeline} samples` +
      (read.invalidUtf8Lines > 0
        ? `, ${read.invalidUtf8Lines} lines with invalid UTF-8 (kept)`
        : ''),
  );
  if (samples.length === 0) {
    await quarantine.close();
    const set = Object.entries(quarantinedByReason);
    throw new NoValidRowsError(
      `no samples: ${turns} valid turns in ${stats.conversations} conversations, ${stats.incomplete} of them incomplete` +
        (set.length > 0
          ? `; quarantined ${set.map(([r, n]) => `${n} ${r}`).join(', ')} (see ${join(outDir, 'quarantine.jsonl')})`
          : ''),
    );
  }
  const judge = opts.judge;
  const judgeProgress = new Progress(`judge (${judge.name})`, opts.quiet, {
    ...(judge.stats ? { spend: () => judge.stats?.() } : {}),
  });
  // Waves judge only what the dataset needs; otherwise every sample is judged.
  const waves = opts.waves
    ? await judgeWaves(samples, config, opts.judge, opts.waves, {
        batchSize: opts.batchSize,
        onProgress: (done, wave) => judgeProgress.update(done, undefined, `judged, wave ${wave}`),
      })
    : null;
  const annotated =
    waves?.annotated ??
    (await annotateSamples(samples, opts.judge, {
      batchSize: opts.batchSize,
      onProgress: (done, total) => judgeProgress.update(done, total),
    }));
  judgeProgress.done(
    `${annotated.rows.length.toLocaleString('en-US')} labelled, ${annotated.unlabeled.length} unlabeled, ${annotated.calls} calls` +
      (waves ? ` in ${waves.planner.history.length} waves (${waves.planner.state})` : ''),
  );
  const annotatedDigest = await writeJsonl(join(outDir, 'annotated.jsonl'), annotated.rows);
  const unlabeledDigest = await writeJsonl(join(outDir, 'unlabeled.jsonl'), annotated.unlabeled);
  for (const row of waves ? waves.offered : annotated.rows) balancer.offer(row);
  const unlabeledByCause: Record<string, number> = {};
  for (const u of annotated.unlabeled)
    unlabeledByCause[u.error] = (unlabeledByCause[u.error] ?? 0) + 1;
  const wavesExtra: Record<string, unknown> = {};
  const job = await writeDataset(
    outDir,
    balancer,
    quarantine,
    {
      command: 'run',
      source: input,
      telemetry: { invalidUtf8Lines: read.invalidUtf8Lines },
      pipeline: {
        name: opts.pipeline,
        history: opts.pipeline === 'conversation' ? opts.history : null,
        assembly: stats,
      },
      redaction: redactor.summary(),
      judge: {
        name: opts.judge.name,
        calls: annotated.calls,
        batchSize: opts.batchSize,
        samplesJudged: waves ? waves.planner.judged : samples.length,
        labelled: annotated.rows.length,
        unlabeled: annotated.unlabeled.length,
        unlabeledByCause,
        ...(opts.judge.stats ? { stats: opts.judge.stats() } : {}),
      },
      ...(waves ? { waves: wavesExtra } : {}),
    },
    waves
      ? () => {
          // The wave report needs the delivered rows: filled in once they are known.
          const result = balancer.finish();
          const delivered = [...result.train, ...result.validation];
          Object.assign(
            wavesExtra,
            waves.planner.report(delivered.map((l) => ({ id: l.id, label: l.label }))),
          );
          return Promise.resolve(result);
        }
      : undefined,
    {
      before: profileRows(config, annotated.rows),
      outputs: { 'annotated.jsonl': annotatedDigest, 'unlabeled.jsonl': unlabeledDigest },
    },
  );
  return job;
}

export type { BalanceManifest };
