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
} from '../adapters/output';
import { loadRanges, readFileLines } from '../adapters/lines';
import { balanceFileParallel } from '../adapters/parallel-balance';
import { annotateSamples } from '../shared/annotate';
import {
  StreamingBalancer,
  type BalanceManifest,
  type BalanceResult,
  type QuarantineRecord,
} from '../shared/balance';
import { checkTurn, describeProblem, type TelemetryTurn } from '../shared/contracts';
import type { BalanceConfig } from '../shared/config';
import type { Judge } from '../shared/judge/types';
import { ConversationAssembler, type HistoryOptions, type Pipeline } from '../shared/samples';
import { Progress } from './progress';
import { NoValidRowsError } from '../shared/errors';

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
  finish: () => Promise<BalanceResult> = () => Promise.resolve(balancer.finish()),
): Promise<JobResult> {
  const quarantineDigest = await quarantine.close();
  const result = await finish();
  const outputs: Record<string, FileDigest> = {};
  outputs['train.jsonl'] = await writeJsonl(join(outDir, 'train.jsonl'), result.train);
  if (balancer.config.validation > 0) {
    outputs['validation.jsonl'] = await writeJsonl(
      join(outDir, 'validation.jsonl'),
      result.validation,
    );
  }
  outputs['quarantine.jsonl'] = quarantineDigest;
  const manifest = { tool: TOOL, ...extra, ...result.manifest, outputs };
  const manifestPath = join(outDir, 'manifest.json');
  await writeJson(manifestPath, manifest);
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
  return writeDataset(outDir, balancer, quarantine, { command: 'balance', source: input }, () =>
    input.endsWith('.gz')
      ? Promise.resolve(balancer.finish())
      : balancer.finishWith((ranges) => loadRanges(input, ranges)),
  );
}

export interface RunOptions {
  pipeline: Pipeline;
  history: HistoryOptions;
  judge: Judge;
  batchSize: number;
  quiet: boolean;
}

/** Reads and validates telemetry turns, quarantining bad ones. */
async function readTelemetry(
  input: string,
  config: BalanceConfig,
  onTurn: (t: TelemetryTurn) => void,
  onBad: (q: QuarantineRecord) => void,
  progress: Progress,
): Promise<void> {
  await readFileLines(input, (line, lineNo) => {
    if (line.trim().length === 0) return;
    if ((lineNo & 0x3fff) === 0) progress.update(lineNo, undefined, 'rows read');
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      onBad({
        line: lineNo,
        reason: 'invalid_json',
        detail: 'line is not valid JSON',
        raw: line.slice(0, 500),
      });
      return;
    }
    const problem = checkTurn(value, config.maxMessageChars);
    if (problem) {
      const rec: QuarantineRecord = {
        line: lineNo,
        reason: problem.reason,
        detail: describeProblem(value, problem, false),
        raw: line.slice(0, 500),
      };
      if (problem.field) rec.field = problem.field;
      onBad(rec);
      return;
    }
    onTurn(value as TelemetryTurn);
  });
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
  let turns = 0;
  await readTelemetry(
    input,
    config,
    (t) => {
      turns++;
      assembler.add(t);
    },
    (q) => {
      balancer.recordQuarantine(q.reason);
      quarantine.write(q);
    },
    readProgress,
  );
  const { samples, stats } = assembler.samples(opts.pipeline, opts.history);
  readProgress.done(
    `${turns.toLocaleString('en-US')} valid turns, ${stats.complete.toLocaleString('en-US')} complete conversations, ` +
      `${samples.length.toLocaleString('en-US')} ${opts.pipeline} samples`,
  );
  if (samples.length === 0) {
    await quarantine.close();
    throw new NoValidRowsError(
      `no samples: ${turns} valid turns in ${stats.conversations} conversations, ${stats.incomplete} of them incomplete`,
    );
  }
  const judgeProgress = new Progress(`judge (${opts.judge.name})`, opts.quiet);
  const annotated = await annotateSamples(samples, opts.judge, {
    batchSize: opts.batchSize,
    onProgress: (done, total) => judgeProgress.update(done, total),
  });
  judgeProgress.done(
    `${annotated.rows.length.toLocaleString('en-US')} labelled, ${annotated.unlabeled.length} unlabeled, ${annotated.calls} calls`,
  );
  const annotatedDigest = await writeJsonl(join(outDir, 'annotated.jsonl'), annotated.rows);
  const unlabeledDigest = await writeJsonl(join(outDir, 'unlabeled.jsonl'), annotated.unlabeled);
  for (const row of annotated.rows) balancer.offer(row);
  const unlabeledByCause: Record<string, number> = {};
  for (const u of annotated.unlabeled)
    unlabeledByCause[u.error] = (unlabeledByCause[u.error] ?? 0) + 1;
  const job = await writeDataset(outDir, balancer, quarantine, {
    command: 'run',
    source: input,
    pipeline: {
      name: opts.pipeline,
      history: opts.pipeline === 'conversation' ? opts.history : null,
      assembly: stats,
    },
    judge: {
      name: opts.judge.name,
      calls: annotated.calls,
      batchSize: opts.batchSize,
      samplesJudged: samples.length,
      labelled: annotated.rows.length,
      unlabeled: annotated.unlabeled.length,
      unlabeledByCause,
    },
  });
  const outputs = job.manifest.outputs as Record<string, FileDigest>;
  outputs['annotated.jsonl'] = annotatedDigest;
  outputs['unlabeled.jsonl'] = unlabeledDigest;
  await writeJson(job.manifestPath, job.manifest);
  return job;
}

export type { BalanceManifest };
