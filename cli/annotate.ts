/**
 * `sft-balancer annotate`: telemetry → samples → judge → annotated JSONL, without
 * balancing. Also the judge flags every judging command shares (`calibrate` too).
 */
import { BlobServiceClient } from '@azure/storage-blob';
import { readFile } from 'node:fs/promises';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ZodError } from 'zod';
import {
  directoryBlobStore,
  containerBlobStore,
  type TextBlobStore,
} from '../adapters/storage/judge-cache';
import { createJudge, JudgeSettingsError } from '../adapters/judge/factory';
import { JudgeConfigError } from '../shared/judge/llm';
import { readFileLines } from '../adapters/files/lines';
import { checkOutputFiles, join, writeJson, writeJsonl } from '../adapters/files/output';
import { annotateSamples } from '../shared/judge/annotate';
import { checkTurn, type TelemetryTurn } from '../shared/contracts/rows';
import { Redactor, type RedactionSummary } from '../shared/samples/redact';
import { RUBRIC_VERSION } from '../shared/judge/rubric';
import { JudgeSettingsSchema, type JudgeSettings } from '../shared/judge/settings';
import type { Judge } from '../shared/judge/types';
import {
  ConversationAssembler,
  DEFAULT_HISTORY,
  PIPELINES,
  type Pipeline,
  type Sample,
} from '../shared/samples/assemble';
import {
  formatZodError,
  nonNegativeInt,
  positiveInt,
  refuseInputOverwrite,
  required,
  UsageError,
} from './args';
import { Progress } from './progress';

export const JUDGE_OPTIONS = {
  judge: { type: 'string' },
  'judge-config': { type: 'string' },
  model: { type: 'string' },
  'base-url': { type: 'string' },
  endpoint: { type: 'string' },
  'api-version': { type: 'string' },
  'batch-size': { type: 'string' },
  concurrency: { type: 'string' },
  rpm: { type: 'string' },
  tpm: { type: 'string' },
  'timeout-ms': { type: 'string' },
  'max-retries': { type: 'string' },
  mode: { type: 'string' },
  replay: { type: 'string' },
  'cache-dir': { type: 'string' },
  'cache-storage': { type: 'string' },
  'no-cache': { type: 'boolean' },
} as const;

export const JUDGE_HELP = `Judge options:
  --judge KIND            signals (default; offline) | openai | azure | replay
  --judge-config FILE     judge settings as JSON (any kind, e.g. {"kind":"panel","judges":[...]})
  --model M               model (openai) or deployment name (azure)
  --base-url URL          an OpenAI-compatible endpoint (openai)
  --endpoint URL          Azure OpenAI endpoint (default $AZURE_OPENAI_ENDPOINT)
  --api-version V         Azure OpenAI API version (default 2024-10-21)
  --batch-size K          samples per request (default 20)
  --concurrency N         requests in flight (default 4)
  --rpm N, --tpm N        requests / tokens per minute budgets (default: none)
  --timeout-ms N          per-request timeout (default 60000)
  --max-retries N         retries of a failed call (default 5)
  --mode sync|batch       batch: the Batch API (50% cheaper, up to 24 h)
  --replay FILE           replay: labels from an earlier annotated file
  --cache-dir DIR         verdict cache directory (default .judge-cache)
  --cache-storage CONN    verdict cache in Azure Blob Storage (a connection string)
  --no-cache              no verdict cache
Keys come from the environment only: JUDGE_API_KEY, else OPENAI_API_KEY (openai) or
AZURE_OPENAI_API_KEY (azure; without one, Entra ID through DefaultAzureCredential).`;

const COMMON = {
  help: { type: 'boolean', short: 'h' },
  quiet: { type: 'boolean', short: 'q' },
  json: { type: 'boolean' },
} as const;

export type Flags = Record<string, string | boolean | undefined>;

export function parseFlags(argv: string[], options: ParseArgsConfig['options']): Flags {
  try {
    return parseArgs({
      args: argv,
      options: { ...COMMON, ...options },
      allowPositionals: false,
      strict: true,
    }).values;
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** Judge settings from flags (or a --judge-config file) over the environment's keys. */
export async function judgeSettingsFromFlags(
  v: Flags,
  env: Readonly<Record<string, string | undefined>> = process.env,
): Promise<JudgeSettings> {
  const str = (k: string) => (typeof v[k] === 'string' ? v[k] : undefined);
  let input: Record<string, unknown>;
  const config = str('judge-config');
  if (config !== undefined) {
    try {
      input = JSON.parse(await readFile(config, 'utf8')) as Record<string, unknown>;
    } catch (err) {
      throw new UsageError(`--judge-config ${config}: ${(err as Error).message}`);
    }
  } else {
    const kind = str('judge') ?? 'signals';
    if (kind === 'signals') input = { kind };
    else if (kind === 'replay') {
      if (!str('replay')) throw new UsageError('--judge replay needs --replay FILE');
      input = { kind, source: str('replay') };
    } else if (kind === 'openai' || kind === 'azure') {
      const azure = kind === 'azure';
      const apiKey = env.JUDGE_API_KEY ?? (azure ? env.AZURE_OPENAI_API_KEY : env.OPENAI_API_KEY);
      const num = (k: string) => (str(k) !== undefined ? Number(str(k)) : undefined);
      input = Object.fromEntries(
        Object.entries({
          kind: 'openai',
          provider: azure ? 'azure' : 'openai',
          model: str('model') ?? env.JUDGE_MODEL,
          baseURL: str('base-url'),
          endpoint: azure ? (str('endpoint') ?? env.AZURE_OPENAI_ENDPOINT) : undefined,
          apiVersion: str('api-version'),
          apiKey: apiKey || undefined,
          mode: str('mode'),
          batchSize: num('batch-size'),
          concurrency: num('concurrency'),
          rpm: num('rpm'),
          tpm: num('tpm'),
          timeoutMs: num('timeout-ms'),
          maxRetries: num('max-retries'),
        }).filter(([, x]) => x !== undefined),
      );
      if (input.model === undefined) throw new UsageError(`--judge ${kind} needs --model`);
    } else {
      throw new UsageError(
        `--judge must be signals, openai, azure or replay (a panel: --judge-config), got "${kind}"`,
      );
    }
  }
  try {
    return JudgeSettingsSchema.parse(input);
  } catch (err) {
    if (err instanceof ZodError)
      throw new UsageError(`judge settings: ${formatZodError(err, false)}`);
    throw err;
  }
}

/** Where the CLI keeps verdicts: a directory by default, blob storage when asked. */
export function cacheStoreFromFlags(v: Flags): ((container: string) => TextBlobStore) | undefined {
  if (v['no-cache'] === true) return undefined;
  const conn = typeof v['cache-storage'] === 'string' ? v['cache-storage'] : undefined;
  if (conn) {
    const service = BlobServiceClient.fromConnectionString(conn);
    return (container) => containerBlobStore(service.getContainerClient(container));
  }
  const dir = typeof v['cache-dir'] === 'string' ? v['cache-dir'] : '.judge-cache';
  return (container) => directoryBlobStore(join(dir, container));
}

/** A judge built from flags, and how many samples to hand it per call. */
export async function judgeFromFlags(
  v: Flags,
): Promise<{ judge: Judge; settings: JudgeSettings; chunk: number }> {
  const settings = await judgeSettingsFromFlags(v);
  const cacheStore = cacheStoreFromFlags(v);
  const quiet = v.quiet === true;
  const judge = createJudge(settings, {
    ...(cacheStore ? { cacheStore } : {}),
    ...(quiet
      ? {}
      : {
          onBatchStatus: (b: { id: string; status: string; request_counts?: unknown }) =>
            process.stderr.write(
              `batch ${b.id}: ${b.status} ${JSON.stringify(b.request_counts ?? {})}\n`,
            ),
        }),
  });
  return { judge, settings, chunk: chunkFor(settings) };
}

/**
 * Samples per `judge` call: all of them for the Batch API (one job for the run),
 * enough to keep every connection busy otherwise.
 */
function chunkFor(s: JudgeSettings): number {
  if (s.kind === 'openai')
    return s.mode === 'batch' ? Number.MAX_SAFE_INTEGER : s.batchSize * s.concurrency * 2;
  if (s.kind === 'panel') return Math.max(...s.judges.map(chunkFor));
  return 1_000;
}

/** Settings as recorded in outputs: never a key. */
export function publicSettings(s: JudgeSettings): unknown {
  return JSON.parse(
    JSON.stringify(s, (k, x: unknown) => (k === 'apiKey' ? undefined : x)),
  ) as unknown;
}

/** Valid telemetry turns of a file, redacted; bad lines are counted, not fatal. */
async function readSamples(
  input: string,
  pipeline: Pipeline,
  history: { historyTurns: number; historyTokenBudget: number },
  redact = true,
): Promise<{ samples: Sample[]; bad: number; turns: number; redaction: RedactionSummary }> {
  const assembler = new ConversationAssembler();
  const redactor = new Redactor({ enabled: redact });
  let bad = 0;
  let turns = 0;
  await readFileLines(input, (line) => {
    if (line.trim() === '') return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      bad++;
      return;
    }
    if (checkTurn(value) !== null) {
      bad++;
      return;
    }
    turns++;
    assembler.add(redactor.turn(value as TelemetryTurn));
  });
  return {
    samples: assembler.samples(pipeline, history).samples,
    bad,
    turns,
    redaction: redactor.summary(),
  };
}

const baseOf = (out: string) => (out.endsWith('.jsonl') ? out.slice(0, -'.jsonl'.length) : out);

export const ANNOTATE_HELP = `Usage: sft-balancer annotate --input TELEMETRY --out FILE [--pipeline P] [judge options]

Labels samples (0 reasoning, 1 non-reasoning) without balancing. Writes FILE (annotated
rows, what "balance" reads), FILE.unlabeled.jsonl (samples the judge could not label,
with the cause) and FILE.judge.json (judge, rubric version, calls, tokens, cost, cache hits).

  --input FILE              telemetry JSONL, one turn a line (".gz" is read gunzipped)
  --out FILE                annotated JSONL to write
  --pipeline P              session (first turns, default) | conversation (every turn + history)
  --history-turns N         previous turns carried as history (default ${DEFAULT_HISTORY.historyTurns})
  --history-tokens N        token budget of the history (default ${DEFAULT_HISTORY.historyTokenBudget})
  --no-redact               send e-mails, phones, IPs, keys and tokens to the judge as they are
                            (redacted into [EMAIL], [AWS_ACCESS_KEY], ... by default)
${JUDGE_HELP}
  -q, --quiet               no progress on stderr
  --json                    print the summary (the .judge.json content) as JSON on stdout`;

/**
 * Runs a judging command; a misconfigured judge (bad key, unknown deployment, missing
 * settings) is reported as a failure (exit 1) rather than a stack trace.
 */
export async function withJudgeErrors(
  command: string,
  run: () => Promise<number>,
): Promise<number> {
  try {
    return await run();
  } catch (err) {
    if (err instanceof JudgeConfigError || err instanceof JudgeSettingsError) {
      process.stderr.write(`sft-balancer ${command}: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}

export function cmdAnnotate(argv: string[]): Promise<number> {
  return withJudgeErrors('annotate', () => annotate(argv));
}

async function annotate(argv: string[]): Promise<number> {
  const v = parseFlags(argv, {
    input: { type: 'string' },
    out: { type: 'string' },
    pipeline: { type: 'string' },
    'history-turns': { type: 'string' },
    'history-tokens': { type: 'string' },
    'no-redact': { type: 'boolean' },
    ...JUDGE_OPTIONS,
  });
  if (v.help) {
    process.stdout.write(`${ANNOTATE_HELP}\n`);
    return 0;
  }
  const input = required(v, 'input');
  const out = required(v, 'out');
  const pipeline = (typeof v.pipeline === 'string' ? v.pipeline : 'session') as Pipeline;
  if (!PIPELINES.includes(pipeline))
    throw new UsageError(`--pipeline must be one of ${PIPELINES.join(', ')}`);
  const history = {
    historyTurns: nonNegativeInt(v, 'history-turns', DEFAULT_HISTORY.historyTurns),
    historyTokenBudget: nonNegativeInt(v, 'history-tokens', DEFAULT_HISTORY.historyTokenBudget),
  };
  if (v['batch-size'] !== undefined) positiveInt(v, 'batch-size');
  const base = baseOf(out);
  const outputs = [out, `${base}.unlabeled.jsonl`, `${base}.judge.json`];
  const str = (k: string) => (typeof v[k] === 'string' ? { flag: `--${k}`, path: v[k] } : null);
  refuseInputOverwrite(
    [{ flag: '--input', path: input }, str('replay'), str('judge-config')],
    outputs.map((path) => ({ flag: '--out', path, kind: 'file' as const })),
  );
  // Before judging (which may take hours and cost money): outputs that cannot be written fail now.
  await checkOutputFiles(outputs);
  const { judge, settings, chunk } = await judgeFromFlags(v);
  const quiet = v.quiet === true;
  const { samples, bad, turns, redaction } = await readSamples(
    input,
    pipeline,
    history,
    v['no-redact'] !== true,
  );
  const progress = new Progress(`annotate (${judge.name})`, quiet, {
    ...(judge.stats ? { spend: () => judge.stats?.() } : {}),
  });
  const result = await annotateSamples(samples, judge, {
    batchSize: Math.min(chunk, Math.max(1, samples.length)),
    onProgress: (done, total) => progress.update(done, total),
  });
  progress.done(`${result.rows.length} labelled, ${result.unlabeled.length} unlabeled`);
  const annotated = await writeJsonl(out, result.rows);
  const unlabeled = await writeJsonl(`${base}.unlabeled.jsonl`, result.unlabeled);
  const unlabeledByCause: Record<string, number> = {};
  for (const u of result.unlabeled)
    unlabeledByCause[u.error] = (unlabeledByCause[u.error] ?? 0) + 1;
  const panel = (judge as Partial<{ agreement(): unknown }>).agreement?.();
  const summary = {
    command: 'annotate',
    source: input,
    pipeline: { name: pipeline, history: pipeline === 'conversation' ? history : null },
    input: { turns, invalidLines: bad, samples: samples.length },
    redaction,
    judge: {
      name: judge.name,
      rubricVersion: RUBRIC_VERSION,
      settings: publicSettings(settings),
      samplesJudged: samples.length,
      labelled: result.rows.length,
      unlabeled: result.unlabeled.length,
      unlabeledByCause,
      ...(judge.stats ? { usage: judge.stats() } : {}),
      ...(panel ? { panel } : {}),
    },
    outputs: { [out]: annotated, [`${base}.unlabeled.jsonl`]: unlabeled },
  };
  await writeJson(`${base}.judge.json`, summary);
  if (v.json === true) {
    process.stdout.write(JSON.stringify(summary) + '\n');
    return 0;
  }
  const u = judge.stats?.();
  process.stdout.write(
    `labelled ${result.rows.length} of ${samples.length} samples → ${out}` +
      (result.unlabeled.length
        ? ` (${result.unlabeled.length} unlabeled → ${base}.unlabeled.jsonl)`
        : '') +
      '\n' +
      (u
        ? `  ${u.calls} calls, ${u.cacheHits} cache hits, ${u.promptTokens} prompt tokens (${u.cachedTokens} cached), ` +
          `${u.completionTokens} completion tokens, est. cost ${u.estimatedCost}\n`
        : '') +
      `  summary: ${base}.judge.json\n`,
  );
  return 0;
}
