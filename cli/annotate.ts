/**
 * `sft-balancer annotate`: telemetry → samples → judge → annotated JSONL, without
 * balancing. Also the judge flags every judging command shares (`calibrate` too).
 */
import { BlobServiceClient } from '@azure/storage-blob';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import {
  directoryBlobStore,
  containerBlobStore,
  type TextBlobStore,
} from '../adapters/storage/judge-cache';
import { createJudge, JudgeSettingsError } from '../adapters/judge/factory';
import { checkJudgeCredential } from '../adapters/judge/credential';
import { JudgeConfigError } from '../shared/judge/llm';
import { readFileLines } from '../adapters/files/lines';
import { checkOutputFiles, join, JsonlWriter, writeJson } from '../adapters/files/output';
import { TurnSorter } from '../adapters/files/turn-spill';
import { StreamingAnnotator } from '../shared/judge/annotate';
import { MAX_LINE_BYTES } from '../shared/build/spec';
import { checkTurn, type TelemetryTurn } from '../shared/contracts/rows';
import { Redactor, type RedactionSummary } from '../shared/samples/redact';
import { RUBRIC_VERSION } from '../shared/judge/rubric';
import type { JudgeSettings } from '../shared/judge/settings';
import type { Judge } from '../shared/judge/types';
import {
  DEFAULT_HISTORY,
  PIPELINES,
  SortedAssembler,
  turnStub,
  type HistoryOptions,
  type Pipeline,
  type Sample,
} from '../shared/samples/assemble';
import { nonNegativeInt, positiveInt, refuseInputOverwrite, required, UsageError } from './args';
import {
  JUDGE_HELP,
  JUDGE_OPTIONS,
  judgeSettingsFromFlags as sharedJudgeSettingsFromFlags,
} from './judge-flags';
import { Progress } from './progress';

export { JUDGE_HELP, JUDGE_OPTIONS };

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

/** Judge settings from flags (or a --judge-config file) over the environment (cli/judge-flags.ts). */
export function judgeSettingsFromFlags(
  v: Flags,
  env: Readonly<Record<string, string | undefined>> = process.env,
): Promise<JudgeSettings> {
  return Promise.resolve(sharedJudgeSettingsFromFlags(v, env));
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
  await checkJudgeCredential(settings);
  return { judge: judgeOf(settings, v), settings, chunk: chunkFor(settings) };
}

/** The judge of these settings, with the verdict cache and progress the flags ask for. */
export function judgeOf(settings: JudgeSettings, v: Flags): Judge {
  const cacheStore = cacheStoreFromFlags(v);
  const quiet = v.quiet === true;
  return createJudge(settings, {
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

/** What reading the input gave: counts, and the turns sorted by conversation (on disk past a buffer). */
interface ReadInput {
  sorter: TurnSorter;
  bad: number;
  tooLong: number;
  turns: number;
  redaction: RedactionSummary;
}

/**
 * Valid telemetry turns of a file, redacted, into a TurnSorter (memory of its buffer, not
 * of the file); bad lines are counted, not fatal. A line over `maxLineBytes` is read only
 * that far, counted as too long and named on stderr (the first ten).
 */
async function readTurns(
  input: string,
  pipeline: Pipeline,
  redact: boolean,
  maxLineBytes: number,
): Promise<ReadInput> {
  const sorter = new TurnSorter();
  const redactor = new Redactor({ enabled: redact });
  const r = { sorter, bad: 0, tooLong: 0, turns: 0 };
  const handle = (line: string, lineNo: number, len: number) => {
    if (len > maxLineBytes) {
      r.bad++;
      if (++r.tooLong <= 10)
        process.stderr.write(
          `sft-balancer annotate: line ${lineNo} is ${len} bytes, over the limit of ${maxLineBytes} bytes (--max-line-bytes): skipped\n`,
        );
      return;
    }
    if (line.trim() === '') return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      r.bad++;
      return;
    }
    if (checkTurn(value) !== null) {
      r.bad++;
      return;
    }
    r.turns++;
    const t = redactor.turn(value as TelemetryTurn);
    // A session sample is a first turn; of the others only what assembly needs.
    sorter.add(pipeline === 'session' && t.turnIndex !== 1 ? turnStub(t) : t);
  };
  try {
    await readFileLines(input, (line, lineNo, _at, len) => handle(line, lineNo, len), undefined, {
      maxLineBytes,
    });
  } catch (err) {
    sorter.dispose();
    throw err;
  }
  return { ...r, redaction: redactor.summary() };
}

/**
 * Assembles the sorted turns a conversation at a time and judges the samples in
 * batches of `batchSize` as they come: the same samples, batches and rows, in the same
 * order, as assembling them all first (ConversationAssembler), holding one batch.
 */
async function judgeSorted(
  read: ReadInput,
  pipeline: Pipeline,
  history: HistoryOptions,
  annotator: StreamingAnnotator,
  batchSize: number,
): Promise<number> {
  let pending: Sample[] = [];
  let samples = 0;
  const assembler = new SortedAssembler(pipeline, history, (made) => {
    samples += made.length;
    for (const s of made) pending.push(s);
  });
  try {
    for (const turn of read.sorter.sorted()) {
      assembler.add(turn);
      if (pending.length >= batchSize) {
        const batch = pending;
        pending = [];
        for (const s of batch) await annotator.push(s);
      }
    }
  } finally {
    read.sorter.dispose();
  }
  assembler.end();
  for (const s of pending) await annotator.push(s);
  await annotator.flush();
  return samples;
}

/**
 * Judges what `feed` pushes into a StreamingAnnotator, writing the labelled rows and the
 * unlabeled records as they come (files swapped in at the end, none on an error).
 */
async function judgeInto(
  out: string,
  unlabeledPath: string,
  judge: Judge,
  chunk: number,
  quiet: boolean,
  feed: (annotator: StreamingAnnotator) => Promise<number>,
) {
  const progress = new Progress(`annotate (${judge.name})`, quiet, {
    ...(judge.stats ? { spend: () => judge.stats?.() } : {}),
  });
  const rowsOut = new JsonlWriter(out);
  const unlabeledOut = new JsonlWriter(unlabeledPath);
  let labelled = 0;
  const unlabeledByCause: Record<string, number> = {};
  const annotator = new StreamingAnnotator(
    judge,
    chunk,
    {
      row: (row) => {
        rowsOut.write(row);
        labelled++;
      },
      unlabeled: (u) => {
        unlabeledOut.write(u);
        unlabeledByCause[u.error] = (unlabeledByCause[u.error] ?? 0) + 1;
      },
    },
    (done) => progress.update(done, undefined),
  );
  let sampleCount: number;
  try {
    sampleCount = await feed(annotator);
  } catch (err) {
    rowsOut.abort();
    unlabeledOut.abort();
    throw err;
  }
  const unlabeledCount = sampleCount - labelled;
  progress.done(`${labelled} labelled, ${unlabeledCount} unlabeled`);
  const annotated = await rowsOut.close();
  const unlabeled = await unlabeledOut.close();
  return { labelled, sampleCount, unlabeledCount, unlabeledByCause, annotated, unlabeled };
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
  --max-line-bytes N        a longer line is read only that far, counted (linesTooLong) and
                            skipped (default ${MAX_LINE_BYTES}, 1 MiB, as "run")
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
    'max-line-bytes': { type: 'string' },
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
  const maxLineBytes = positiveInt(v, 'max-line-bytes', MAX_LINE_BYTES);
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
  const read = await readTurns(input, pipeline, v['no-redact'] !== true, maxLineBytes);
  const j = await judgeInto(out, `${base}.unlabeled.jsonl`, judge, chunk, quiet, (annotator) =>
    judgeSorted(read, pipeline, history, annotator, chunk),
  );
  const { labelled, sampleCount, unlabeledCount, unlabeledByCause, annotated, unlabeled } = j;
  const panel = (judge as Partial<{ agreement(): unknown }>).agreement?.();
  const summary = {
    command: 'annotate',
    source: input,
    pipeline: { name: pipeline, history: pipeline === 'conversation' ? history : null },
    input: {
      turns: read.turns,
      invalidLines: read.bad,
      linesTooLong: read.tooLong,
      samples: sampleCount,
    },
    redaction: read.redaction,
    judge: {
      name: judge.name,
      rubricVersion: RUBRIC_VERSION,
      settings: publicSettings(settings),
      samplesJudged: sampleCount,
      labelled,
      unlabeled: unlabeledCount,
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
    `labelled ${labelled} of ${sampleCount} samples → ${out}` +
      (unlabeledCount ? ` (${unlabeledCount} unlabeled → ${base}.unlabeled.jsonl)` : '') +
      '\n' +
      (u
        ? `  ${u.calls} calls, ${u.cacheHits} cache hits, ${u.promptTokens} prompt tokens (${u.cachedTokens} cached), ` +
          `${u.completionTokens} completion tokens, est. cost ${u.estimatedCost}\n`
        : '') +
      `  summary: ${base}.judge.json\n`,
  );
  return 0;
}
