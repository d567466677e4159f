/**
 * The `sft-balancer` command line: generate, balance, run, demo.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import {
  checkOutputDir,
  checkOutputFiles,
  describeSystemError,
  isSystemError,
  JsonlWriter,
  join,
  withOutputDir,
} from '../adapters/files/output';
import { DEFAULT_BALANCE_MAX_LINE_BYTES } from '../adapters/files/parallel-balance';
import { generateTelemetry } from '../shared/source/generate';
import type { BalanceConfig } from '../shared/contracts/config';
import { createSignalsJudge } from '../shared/judge/signals';
import { WaveSettingsSchema, type WaveSettingsInput } from '../shared/waves/planner';
import { DEFAULT_HISTORY, PIPELINES, type Pipeline } from '../shared/samples/assemble';
import {
  BALANCE_HELP,
  BALANCE_OPTIONS,
  UsageError,
  buildIdFlag,
  balanceConfigFromFlags,
  nonNegativeInt,
  positiveInt,
  refuseInputOverwrite,
  required,
} from './args';
import { balanceFile, runPipeline, type JobResult } from './jobs';
import { INPUT_HELP, INPUT_OPTIONS, inputSettingsFromFlags, withJsonlInput } from './input-flags';
import type { InputReadOptions } from '../adapters/files/input-formats';
import { rowShape } from '../shared/contracts/rows';
import { KUSTO_RUN_HELP, KUSTO_RUN_OPTIONS, kustoRunOf } from './kusto-run';
import { JUDGE_HELP, JUDGE_OPTIONS, judgeEnvFromFlags, judgeSettingsOfEnv } from './judge-flags';
import { Progress } from './progress';
import { EVALUATE_USAGE } from './evaluate';
import { PROBE_HELP, PROBE_OPTIONS, probeEnvFromFlags, probeSettingsOf } from './probe-flags';
import { probeSectionLines } from '../shared/probe';

const COMMON = {
  help: { type: 'boolean', short: 'h' },
  quiet: { type: 'boolean', short: 'q' },
  json: { type: 'boolean' },
} as const;

const USAGE = `sft-balancer: turn chat telemetry into a balanced SFT dataset for a model router.

Usage: sft-balancer <command> [options]

Commands:
  generate   write synthetic telemetry (JSONL) for demos, tests and benchmarks
  balance    balance an annotated JSONL file into train.jsonl + manifest.json
  run        a build on the local Functions runner (Azurite queues and blobs); --in-process: one process
  demo       generate telemetry and build a dataset from it with the local runner
  annotate   label telemetry samples with a judge (signals, OpenAI/Azure OpenAI, replay, panel)
  calibrate  compare a judge with a human-labelled file (accuracy, kappa, per stratum)
  serve      the Functions app on localhost as Core Tools serves it (HTTP routes, queues, timer)
  download   a finished build's outputs by id, from the storage serve used
  evaluate   the router probe on a dataset: can a router learn its labels from the text?

Run "sft-balancer <command> --help" for a command's options.`;

const HELP: Record<string, string> = {
  generate: `Usage: sft-balancer generate (--conversations N | --rows N) --out FILE [--seed S] [--annotated]

  --conversations N   conversations to generate
  --rows N            stop after N rows instead
  --out FILE          where to write (JSONL; ".gz" is not supported for output)
  --seed S            generator seed (default 1)
  --annotated         add the hidden label (0 reasoning, 1 non-reasoning): an annotated file
  --incomplete F      share of conversations with a logged turn missing (default 0.05)
  -q, --quiet         no progress on stderr
  --json              print the summary as JSON on stdout`,
  balance: `Usage: sft-balancer balance --input FILE --out DIR [options]

Reads annotated rows (telemetry turn + label), writes DIR/train.jsonl, DIR/manifest.json,
DIR/quarantine.jsonl, DIR/report.html, the router probe's DIR/probe.json and
DIR/label-review.jsonl and, with --validation, DIR/validation.jsonl. DIR is built beside itself
and swapped in whole: it holds this build's files only, and a directory holding files
sft-balancer did not write, or the input, is refused.

  --input FILE              annotated rows: JSONL, CSV or Parquet, or a folder of parts (".gz" is read gunzipped)
  --out DIR                 output directory
  --threads N               cores to use (default: up to 4; the output is the same for any N)
  --max-line-bytes N        a longer line is read only that far and quarantined line_too_long
                            (default 16 MiB, 16777216)
${PROBE_HELP}
${BALANCE_HELP}
${INPUT_HELP}
  -q, --quiet               no progress on stderr
  --json                    print the summary as JSON on stdout`,
  run: `Usage: sft-balancer run --input TELEMETRY --out DIR [--pipeline session|conversation] [options]

Builds a dataset the way the Azure Functions app does: starts an embedded Azurite (or uses
--storage), uploads the telemetry, and serves the app's queue functions (plan → judge batches
→ fan-in) with the Functions host's semantics from host.json; then downloads
train.jsonl, manifest.json, quarantine.jsonl, report.html, probe.json, label-review.jsonl
and status.json to DIR (swapped in whole, as
for balance: DIR holds this build's files only). Running the same
command again against the same --storage resumes (or returns) the same build.
Settings (SFT_*, see docs/settings.md) come from the environment.

  --input FILE              telemetry JSONL, one turn a line
${KUSTO_RUN_HELP}
  --out DIR                 output directory
  --storage CONN            storage connection string (default: an embedded Azurite)
  --build-id ID             build id (default: derived from the input's sha256 and the settings)
  --no-upload               read the input file in place instead of uploading it
  --instances N             host instances serving the queues (default 1; scale-out on one machine)
  --verbose                 log every function invocation
  --in-process              no storage, no queues: the whole pipeline in this process
                            (also writes annotated.jsonl and unlabeled.jsonl)
  --no-redact               keep e-mails, phones, IPs, keys and tokens in user text (redacted
                            by default; same as SFT_REDACT=false)
  --pipeline P              session (first turns, default) | conversation (every turn + history)
  --history-turns N         previous turns carried as history (conversation; default ${DEFAULT_HISTORY.historyTurns})
  --history-tokens N        token budget of the history (default ${DEFAULT_HISTORY.historyTokenBudget})
  --waves                   yield-aware judging: judge in waves only what the balance needs
                            (in-process, or on the runner: a scan round, then rounds of batches);
                            manifest.waves has calls and yields per wave, targets, bin mix
  --judge-budget N          with --waves: judge at most N samples; when it runs out the dataset is
                            balanced from what was judged (--on-shortfall decides; default shrink)
  --judge-budget-usd X      with --waves: judge for at most X USD (tokens x the price table, see
                            --judge-prices); after the pilot wave each wave takes what the rest buys
  --explore F               with --waves: exploration floor in [0, 1] (default 0.3; 1 = no signal bias)
  --max-waves N             with --waves: at most N waves (default 20)
${PROBE_HELP}
${JUDGE_HELP}

${BALANCE_HELP}
${INPUT_HELP}
  -q, --quiet               no progress on stderr
  --json                    print the summary as JSON on stdout

Default --stratify is turnBucket for session and turnBucket,position for conversation.`,
  demo: `Usage: sft-balancer demo [--conversations N] [--out DIR] [--pipeline P] [--total N]

Generates telemetry into DIR/telemetry.jsonl and builds a dataset from it in DIR/dataset with
the local Functions runner on an embedded Azurite. The judge: signals (offline heuristic)
unless judge options or SFT_JUDGE say otherwise (see "sft-balancer run --help").
  --conversations N   default 20000
  --out DIR           default out/demo
  --pipeline P        session (default) | conversation
  --total N           dataset size (default 4000)
  --in-process        run the pipeline in one process instead of the runner
  --format LIST       more formats: chat, classifier, parquet, with a dataset card
  --split T,V,X       train,validation,test shares, e.g. 0.9,0.05,0.05
  --judge ...         the judge options of "run" (--judge, --model/--deployment, --endpoint, ...)
  -q, --quiet         no progress on stderr
  --json              print the summary as JSON on stdout`,
  evaluate: EVALUATE_USAGE,
};

function parse(argv: string[], options: ParseArgsConfig['options']) {
  try {
    return parseArgs({
      args: argv,
      options: { ...COMMON, ...options },
      allowPositionals: false,
      strict: true,
    }).values as Record<string, string | boolean | undefined>;
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

function pipelineOf(values: Record<string, unknown>): Pipeline {
  const p = (values.pipeline as string | undefined) ?? 'session';
  if (!(PIPELINES as readonly string[]).includes(p)) {
    throw new UsageError(`--pipeline must be one of ${PIPELINES.join(', ')}, got "${p}"`);
  }
  return p as Pipeline;
}

/** "line_too_long 1, invalid_json 3": the quarantine counts for the summary line. */
function byReason(counts: Record<string, number>): string {
  return Object.entries(counts)
    .map(([reason, n]) => `${reason} ${n}`)
    .join(', ');
}

function summarize(job: JobResult, outDir: string, json = false): void {
  const m = job.manifest as {
    selected: { total: number; byLabel: Record<string, number>; upsampled: number };
    split?: {
      train: number;
      validation: number;
      test?: number;
      byLabel?: Record<string, Record<string, number>>;
      deviation?: { total: number };
    };
    formats?: { files: string[]; failed: { format: string; message: string }[] };
    shortfalls: { classes: unknown[] };
    quarantine: { total: number; byReason?: Record<string, number> };
    telemetry?: { invalidUtf8Lines?: number };
    input: { duplicatesRemoved: number };
    nearDuplicates?: { removed: number; byLabelStratum: Record<string, Record<string, number>> };
    judge?: {
      name: string;
      labelledBy?: { name: string; kind: string; rubricVersion: string | null };
      cost?: {
        promptTokens: number;
        cachedTokens: number;
        completionTokens: number;
        estimatedCost: number;
        currency: string;
        pricing: { note: string } | null;
      };
    };
    waves?: { outcome: string; judged: number; waves: unknown[] };
    probe?: {
      status: string;
      message: string;
      verdict?: { kind: string; textAuc: number | null; signalsAuc: number | null } | null;
      gate?: { minAuc: number | null; passed: boolean | null };
    };
  };
  const probe = m.probe
    ? {
        status: m.probe.status,
        message: m.probe.message,
        verdict: m.probe.verdict?.kind ?? null,
        textAuc: m.probe.verdict?.textAuc ?? null,
        signalsAuc: m.probe.verdict?.signalsAuc ?? null,
        ...(m.probe.gate ? { gate: m.probe.gate } : {}),
      }
    : null;
  const waves = m.waves
    ? {
        outcome: m.waves.outcome,
        judged: m.waves.judged,
        waves: m.waves.waves.length,
        callsPerDelivered:
          m.selected.total > 0
            ? Math.round((m.waves.judged / m.selected.total) * 1000) / 1000
            : null,
      }
    : null;
  if (json) {
    process.stdout.write(
      JSON.stringify({
        out: outDir,
        train: join(outDir, 'train.jsonl'),
        manifest: job.manifestPath,
        report: join(outDir, 'report.html'),
        selected: m.selected,
        ...(m.split ? { split: m.split } : {}),
        ...(m.formats ? { formats: m.formats } : {}),
        quarantined: m.quarantine.total,
        duplicatesRemoved: m.input.duplicatesRemoved,
        ...(m.nearDuplicates ? { nearDuplicates: m.nearDuplicates } : {}),
        shortfalls: m.shortfalls,
        ...(m.judge ? { judge: m.judge } : {}),
        ...(waves ? { waves } : {}),
        ...(probe ? { probe } : {}),
      }) + '\n',
    );
    return;
  }
  process.stdout.write(
    `wrote ${m.selected.total} samples (reasoning ${m.selected.byLabel['0']}, non_reasoning ${m.selected.byLabel['1']}` +
      `${m.selected.upsampled ? `, ${m.selected.upsampled} upsampled` : ''}) to ` +
      summarizeSplits(m.split, outDir) +
      (m.formats
        ? `  formats: ${m.formats.files.join(', ')}` +
          m.formats.failed.map((f) => `; ${f.format} NOT written: ${f.message}`).join('') +
          '\n'
        : '') +
      `  duplicates removed ${m.input.duplicatesRemoved}` +
      (m.nearDuplicates ? `, near-duplicates removed ${nearSummary(m.nearDuplicates)}` : '') +
      `, quarantined ${m.quarantine.total}` +
      `${m.quarantine.total > 0 && m.quarantine.byReason ? ` (${byReason(m.quarantine.byReason)})` : ''}` +
      `${m.telemetry?.invalidUtf8Lines ? `, ${m.telemetry.invalidUtf8Lines} lines with invalid UTF-8 (kept, as U+FFFD)` : ''}` +
      `${m.shortfalls.classes.length ? `, class shortfall: see manifest` : ''}\n` +
      (waves
        ? `  judged ${waves.judged} samples in ${waves.waves} waves (${waves.outcome}): ` +
          `${waves.callsPerDelivered} per delivered sample\n`
        : '') +
      summarizeJudge(m.judge) +
      probeSectionLines(m.probe)
        .map((l) => `  ${l}\n`)
        .join('') +
      `  manifest: ${job.manifestPath}\n`,
  );
}

/** "12 (reasoning/A 3, non_reasoning/B 9)": near-duplicates removed per class × stratum. */
function nearSummary(n: {
  removed: number;
  byLabelStratum: Record<string, Record<string, number>>;
}) {
  const cells = Object.entries(n.byLabelStratum).flatMap(([l, by]) =>
    Object.entries(by)
      .filter(([, v]) => v > 0)
      .map(([st, v]) => `${l === '0' ? 'reasoning' : 'non_reasoning'}/${st} ${v}`),
  );
  return `${n.removed}${cells.length ? ` (${cells.join(', ')})` : ''}`;
}

/** "out/train.jsonl" or, with held-out splits, the files with their counts per class. */
function summarizeSplits(
  split:
    | {
        train: number;
        validation: number;
        test?: number;
        byLabel?: Record<string, Record<string, number>>;
        deviation?: { total: number };
      }
    | undefined,
  outDir: string,
): string {
  if (!split?.byLabel) return `${join(outDir, 'train.jsonl')}\n`;
  const parts = (['train', 'validation', 'test'] as const)
    .filter((s) => s === 'train' || (split[s] ?? 0) > 0)
    .map((s) => {
      const c = split.byLabel![s] ?? {};
      return `${s}.jsonl ${split[s] ?? 0} (${c['0'] ?? 0} / ${c['1'] ?? 0})`;
    });
  return (
    `${outDir}: ${parts.join(', ')}` +
    (split.deviation && split.deviation.total > 0
      ? `; off the class ratio by ${split.deviation.total} sample(s) (conversations too large to place exactly)`
      : '') +
    '\n'
  );
}

/** "labelled by openai:gpt-4o-mini (rubric ...): N prompt tokens ..., est. cost ..." for the summary. */
function summarizeJudge(
  j:
    | {
        name: string;
        labelledBy?: { name: string; kind: string; rubricVersion: string | null };
        cost?: {
          promptTokens: number;
          cachedTokens: number;
          completionTokens: number;
          estimatedCost: number;
          currency: string;
          pricing: { note: string } | null;
        };
      }
    | undefined,
): string {
  if (!j) return '';
  const by = j.labelledBy;
  if (by ? by.kind === 'heuristic' : j.name.startsWith('signals'))
    return `  labelled by the offline signals heuristic (${by?.name ?? j.name}) — not for training a production router\n`;
  const c = j.cost;
  return (
    `  labelled by ${by?.name ?? j.name}${by?.rubricVersion ? ` (rubric ${by.rubricVersion})` : ''}` +
    (c
      ? `: ${c.promptTokens} prompt tokens (${c.cachedTokens} cached), ${c.completionTokens} completion tokens, ` +
        `est. cost ${c.estimatedCost} ${c.currency}${c.pricing ? ` (${c.pricing.note})` : ''}`
      : '') +
    '\n'
  );
}

/**
 * A dataset built in a staging directory and swapped in as `out` (adapters/files/output.ts):
 * `out` holds this build's files only, and a reader never sees a mix of two builds.
 */
async function intoOutputDir(
  out: string,
  build: (dir: string) => Promise<JobResult>,
): Promise<JobResult> {
  const job = await withOutputDir(out, build);
  return { ...job, manifestPath: join(out, 'manifest.json') };
}

/** With --complexity-fit quantiles: the tier thresholds fitted to the input (cli/complexity-fit.ts). */
async function fitted(
  config: BalanceConfig,
  v: Record<string, unknown>,
  input: string,
  firstTurnsOnly: boolean,
  inputs: InputReadOptions = {},
): Promise<BalanceConfig> {
  if (v['complexity-fit'] === undefined) return config;
  if (v['complexity-thresholds'] !== undefined)
    throw new UsageError('give --complexity-thresholds or --complexity-fit, not both');
  const { fitComplexityToFile } = await import('./complexity-fit.js');
  return fitComplexityToFile(config, input, firstTurnsOnly, inputs);
}

/**
 * Exit 1 when the build failed after writing its set (the probe's text AUC below
 * --probe-min-auc): the files stay for a person to read, as the runner leaves them.
 */
function failedAfterWriting(job: JobResult): number {
  if (!job.failure) return 0;
  process.stderr.write(`sft-balancer: build failed: ${job.failure}\n`);
  return 1;
}

async function cmdGenerate(argv: string[]): Promise<number> {
  const v = parse(argv, {
    conversations: { type: 'string' },
    rows: { type: 'string' },
    out: { type: 'string' },
    seed: { type: 'string' },
    annotated: { type: 'boolean' },
    incomplete: { type: 'string' },
  });
  if (v.help) return help('generate');
  const out = required(v, 'out');
  await checkOutputFiles([out]);
  if (v.conversations === undefined && v.rows === undefined)
    throw new UsageError('give --conversations N or --rows N');
  const incomplete = v.incomplete === undefined ? 0.05 : Number(v.incomplete);
  if (!(incomplete >= 0 && incomplete <= 1)) throw new UsageError('--incomplete must be in [0, 1]');
  const opts = {
    seed: nonNegativeInt(v, 'seed', 1),
    annotated: v.annotated === true,
    incompleteShare: incomplete,
    ...(v.conversations !== undefined ? { conversations: positiveInt(v, 'conversations') } : {}),
    ...(v.rows !== undefined ? { rows: positiveInt(v, 'rows') } : {}),
  };
  const writer = new JsonlWriter(out);
  const progress = new Progress('generate', v.quiet === true);
  let n = 0;
  for (const turn of generateTelemetry(opts)) {
    writer.write(turn);
    if ((++n & 0x3fff) === 0) progress.update(n, opts.rows, 'rows');
  }
  const digest = await writer.close();
  progress.done(`${digest.lines.toLocaleString('en-US')} rows → ${out}`);
  if (v.json === true)
    process.stdout.write(
      JSON.stringify({ out, rows: digest.lines, bytes: digest.bytes, sha256: digest.sha256 }) +
        '\n',
    );
  else if (v.quiet !== true)
    process.stdout.write(`${out}\t${digest.lines} rows\tsha256 ${digest.sha256}\n`);
  return 0;
}

async function cmdBalance(argv: string[]): Promise<number> {
  const v = parse(argv, {
    input: { type: 'string' },
    out: { type: 'string' },
    threads: { type: 'string' },
    'max-line-bytes': { type: 'string' },
    ...PROBE_OPTIONS,
    ...BALANCE_OPTIONS,
    ...INPUT_OPTIONS,
  });
  if (v.help) return help('balance');
  const probe = probeSettingsOf({ ...process.env, ...probeEnvFromFlags(v) });
  const input = required(v, 'input');
  const out = required(v, 'out');
  const inputs = inputSettingsFromFlags(v);
  const config = await fitted(balanceConfigFromFlags(v), v, input, false, inputs);
  if (inputs.columns) config.columns = inputs.columns;
  const shape = rowShape({ annotated: true, stratify: config.stratify, columns: inputs.columns });
  const maxLineBytes = positiveInt(v, 'max-line-bytes', DEFAULT_BALANCE_MAX_LINE_BYTES);
  refuseInputOverwrite(
    [{ flag: '--input', path: input }],
    [{ flag: '--out', path: out, kind: 'dir' }],
  );
  const job = await intoOutputDir(out, (dir) =>
    withJsonlInput(input, inputs, shape, (jsonl) =>
      balanceFile(jsonl, dir, config, {
        source: input,
        quiet: v.quiet === true,
        ...(v.threads !== undefined ? { threads: positiveInt(v, 'threads') } : {}),
        maxLineBytes,
        probe,
      }),
    ),
  );
  summarize(job, out, v.json === true);
  return failedAfterWriting(job);
}

const RUN_OPTIONS = {
  input: { type: 'string' },
  out: { type: 'string' },
  pipeline: { type: 'string' },
  'history-turns': { type: 'string' },
  'history-tokens': { type: 'string' },
  storage: { type: 'string' },
  'build-id': { type: 'string' },
  'no-upload': { type: 'boolean' },
  instances: { type: 'string' },
  verbose: { type: 'boolean' },
  'in-process': { type: 'boolean' },
  'no-redact': { type: 'boolean' },
  waves: { type: 'boolean' },
  'judge-budget': { type: 'string' },
  'judge-budget-usd': { type: 'string' },
  explore: { type: 'string' },
  'max-waves': { type: 'string' },
  ...PROBE_OPTIONS,
  ...KUSTO_RUN_OPTIONS,
  ...JUDGE_OPTIONS,
  ...BALANCE_OPTIONS,
  ...INPUT_OPTIONS,
} as const;

/** Wave settings from the run flags, or undefined without --waves. */
function waveSettingsOf(v: Record<string, unknown>): WaveSettingsInput | undefined {
  const flags = ['judge-budget', 'judge-budget-usd', 'explore', 'max-waves'].filter(
    (f) => v[f] !== undefined,
  );
  if (v.waves !== true) {
    if (flags.length > 0) throw new UsageError(`--${flags[0]} needs --waves`);
    return undefined;
  }
  const input: WaveSettingsInput = {};
  if (v['judge-budget'] !== undefined) input.maxJudged = positiveInt(v, 'judge-budget');
  if (v['max-waves'] !== undefined) input.maxWaves = positiveInt(v, 'max-waves');
  if (v['judge-budget-usd'] !== undefined) input.maxCost = Number(v['judge-budget-usd']);
  if (v.explore !== undefined) input.explore = Number(v.explore);
  const parsed = WaveSettingsSchema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const flag: Record<string, string> = {
      maxJudged: 'judge-budget',
      maxCost: 'judge-budget-usd',
      maxWaves: 'max-waves',
      explore: 'explore',
    };
    throw new UsageError(`--${flag[String(issue.path[0])] ?? 'waves'}: ${issue.message}`);
  }
  return input;
}

async function cmdRun(argv: string[]): Promise<number> {
  const v = parse(argv, RUN_OPTIONS);
  if (v.help) return help('run');
  const kusto = kustoRunOf(v);
  const input = kusto ? '' : required(v, 'input');
  const out = required(v, 'out');
  if (typeof v['build-id'] === 'string') buildIdFlag(v['build-id']);
  const pipeline = pipelineOf(v);
  const flagged = balanceConfigFromFlags(v, {
    stratify: pipeline === 'session' ? ['turnBucket'] : ['turnBucket', 'position'],
  });
  const inputs = inputSettingsFromFlags(v);
  await kusto?.checkCredential(); // a missing or expired Kusto credential: one line, exit 1
  const config = kusto
    ? await kusto.fit(flagged, v)
    : await fitted(flagged, v, input, pipeline === 'session', inputs);
  if (inputs.columns) config.columns = inputs.columns;
  const shape = rowShape({ annotated: false, stratify: config.stratify, columns: inputs.columns });
  /** A CSV/Parquet file or a folder of parts is read through a JSONL copy (cli/input-flags.ts). */
  const viaJsonl = <T>(fn: (jsonl: string) => Promise<T>): Promise<T> =>
    kusto ? fn(input) : withJsonlInput(input, inputs, shape, fn);
  const history = {
    historyTurns: nonNegativeInt(v, 'history-turns', DEFAULT_HISTORY.historyTurns),
    historyTokenBudget: nonNegativeInt(v, 'history-tokens', DEFAULT_HISTORY.historyTokenBudget),
  };
  const waves = waveSettingsOf(v);
  refuseInputOverwrite(
    [
      kusto ? null : { flag: '--input', path: input },
      typeof v.replay === 'string' ? { flag: '--replay', path: v.replay } : null,
    ],
    [{ flag: '--out', path: out, kind: 'dir' }],
  );
  // The judge flags as the settings the Functions app reads: the runner and in-process
  // judging build the same judge from them (cli/judge-flags.ts).
  const env: Record<string, string | undefined> = {
    ...(kusto?.env ?? process.env),
    ...(v['no-redact'] === true ? { SFT_REDACT: 'false' } : {}),
    ...probeEnvFromFlags(v),
    ...judgeEnvFromFlags(v),
  };
  const probe = probeSettingsOf(env);
  const judgeSettings = judgeSettingsOfEnv(env);
  // Before any work: a judge without a credential fails now, in one line.
  await (await import('../adapters/judge/credential.js')).checkJudgeCredential(judgeSettings);
  if (v['in-process'] !== true) {
    // Checked before the build; the runner swaps the downloaded set in whole at the end.
    await checkOutputDir(out);
    // Loaded on use: the storage SDKs cost start-up time every other command would pay.
    const { runLocal } = await import('./local-runner.js');
    const run = await viaJsonl((jsonl) =>
      runLocal({
        ...(kusto ? kusto.runner : { input: jsonl }),
        out,
        pipeline,
        history,
        config,
        ...(typeof v.storage === 'string' ? { storage: v.storage } : {}),
        ...(typeof v['build-id'] === 'string' ? { buildId: v['build-id'] } : {}),
        upload: v['no-upload'] !== true,
        instances: positiveInt(v, 'instances', 1),
        quiet: v.quiet === true,
        verbose: v.verbose === true,
        ...(waves ? { waves } : {}),
        env,
      }),
    );
    summarize(run, out, v.json === true);
    return 0;
  }
  const judge =
    judgeSettings.kind === 'signals'
      ? createSignalsJudge({
          complexity: config.complexity,
          reasoningModels: config.reasoningModels,
          ...(judgeSettings.threshold !== undefined ? { threshold: judgeSettings.threshold } : {}),
        })
      : // Loaded on use: the judge factory pulls in the openai and Azure SDKs.
        (await import('./annotate.js')).judgeOf(judgeSettings, v);
  const batchSize = positiveInt({ 'batch-size': env.SFT_JUDGE_BATCH_SIZE }, 'batch-size', 20);
  const job = await intoOutputDir(out, async (dir) =>
    viaJsonl(async (jsonl) =>
      runPipeline(kusto ? await kusto.stage() : jsonl, dir, config, {
        ...(kusto ? {} : { source: input }),
        pipeline,
        history,
        judge,
        ...(waves ? { waves } : {}),
        batchSize,
        quiet: v.quiet === true,
        redact: v['no-redact'] !== true,
        probe,
      }).finally(() => kusto?.unstage()),
    ),
  );
  summarize(job, out, v.json === true);
  return failedAfterWriting(job);
}

async function cmdDemo(argv: string[]): Promise<number> {
  const v = parse(argv, {
    conversations: { type: 'string' },
    out: { type: 'string' },
    pipeline: { type: 'string' },
    total: { type: 'string' },
    'in-process': { type: 'boolean' },
    format: { type: 'string' },
    split: { type: 'string' },
    ...JUDGE_OPTIONS,
  });
  if (v.help) return help('demo');
  // Checked before any telemetry is generated: a bad value fails at once.
  balanceConfigFromFlags({ format: v.format, split: v.split });
  // The judge flags go to run as given; a bad one fails before any telemetry is generated.
  judgeSettingsOfEnv({ ...process.env, ...judgeEnvFromFlags(v) });
  const judgeArgs = Object.keys(JUDGE_OPTIONS).flatMap((k) =>
    v[k] === undefined ? [] : v[k] === true ? [`--${k}`] : [`--${k}`, String(v[k])],
  );
  const out = (v.out as string | undefined) ?? 'out/demo';
  const conversations = positiveInt(v, 'conversations', 20_000);
  const pipeline = pipelineOf(v);
  const telemetry = join(out, 'telemetry.jsonl');
  // Before generating: a dataset directory that cannot be replaced fails at once.
  await checkOutputDir(join(out, 'dataset'));
  const quiet = v.quiet === true ? ['--quiet'] : [];
  await cmdGenerate([
    '--conversations',
    String(conversations),
    '--out',
    telemetry,
    '--seed',
    '1',
    ...quiet,
    ...(v.json === true && v.quiet !== true ? ['--quiet'] : []), // stdout: the run's JSON only
  ]);
  return cmdRun([
    '--input',
    telemetry,
    '--out',
    join(out, 'dataset'),
    '--pipeline',
    pipeline,
    '--total',
    String(positiveInt(v, 'total', 4_000)),
    ...quiet,
    ...(v.json === true ? ['--json'] : []),
    ...(v['in-process'] === true ? ['--in-process'] : []),
    ...(typeof v.format === 'string' ? ['--format', v.format] : []),
    ...(typeof v.split === 'string' ? ['--split', v.split] : []),
    ...judgeArgs,
  ]);
}

function help(command?: string): number {
  process.stdout.write(`${(command && HELP[command]) ?? USAGE}\n`);
  return 0;
}

const COMMANDS: Record<string, (argv: string[]) => Promise<number>> = {
  generate: cmdGenerate,
  balance: cmdBalance,
  run: cmdRun,
  demo: cmdDemo,
  // Loaded on use: the judge modules pull in the openai and Azure SDKs.
  annotate: async (argv) => (await import('./annotate.js')).cmdAnnotate(argv),
  calibrate: async (argv) => (await import('./calibrate.js')).cmdCalibrate(argv),
  // Loaded on use: the storage SDKs and @azure/functions.
  serve: async (argv) => (await import('./serve.js')).cmdServe(argv),
  download: async (argv) => (await import('./serve.js')).cmdDownload(argv),
  evaluate: async (argv) => (await import('./evaluate.js')).evaluateCommand(argv),
};

/** Runs the CLI; returns the exit code (0 ok, 1 failed, 2 usage). */
export async function main(argv: string[]): Promise<number> {
  // A command that never finishes and leaves nothing to wake it (the launcher's guard, tested).
  if (process.env.SFT_FAILPOINT === 'stall') await new Promise(() => undefined);
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    return help(rest[0]);
  }
  const run = COMMANDS[command];
  if (!run) {
    process.stderr.write(`sft-balancer: unknown command "${command}"\n\n${USAGE}\n`);
    return 2;
  }
  try {
    return await run(rest);
  } catch (err) {
    const { line, exit } = explain(err);
    process.stderr.write(
      `sft-balancer ${command}: ${line}\n` +
        (exit === 2 ? `(see sft-balancer ${command} --help)\n` : '') +
        (debugging(rest) ? stacks(err) : ''),
    );
    return exit;
  }
}

/** SFT_DEBUG, DEBUG or --verbose: a failure prints its stack (and its causes') too. */
const debugging = (argv: string[]) =>
  Boolean(process.env.SFT_DEBUG || process.env.DEBUG) || argv.includes('--verbose');

function stacks(err: unknown): string {
  let text = '';
  for (let e = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++)
    text += `${depth ? 'caused by: ' : ''}${e.stack ?? String(e)}\n`;
  return text;
}

/** Error classes of the language and of Node: their message alone does not say what failed. */
const GENERIC = new Set([
  'Error',
  'TypeError',
  'RangeError',
  'ReferenceError',
  'SyntaxError',
  'EvalError',
  'URIError',
  'AggregateError',
]);

/** What explain() reads of core-rest-pipeline's RestError (the class both storage SDKs throw). */
interface StorageError extends Error {
  code?: string;
  statusCode?: number;
  request?: { url?: string };
}

/**
 * A storage SDK failure, told by its name as the SDK's own isRestError does (an Error named
 * "RestError"): the CLI does not load @azure/storage-blob (0.2 s) only to have its class at hand.
 * The fields read are checked for their types, so another error of that name is described safely.
 */
function isStorageError(e: unknown): e is StorageError {
  if (!(e instanceof Error) || e.name !== 'RestError') return false;
  const { statusCode, code, request } = e as {
    statusCode?: unknown;
    code?: unknown;
    request?: unknown;
  };
  return (
    (statusCode === undefined || typeof statusCode === 'number') &&
    (code === undefined || typeof code === 'string') &&
    (request === undefined || (typeof request === 'object' && request !== null))
  );
}

/** A storage (Azure SDK) failure in one line, without the request's query (it may hold a SAS). */
function storageLine(e: StorageError): string {
  let where = '';
  try {
    if (e.request?.url) {
      const u = new URL(e.request.url);
      where = ` at ${u.origin}${u.pathname}`;
    }
  } catch {
    // No usable URL: the status says enough.
  }
  const first = e.message.split('\n')[0]!.trim();
  if (e.statusCode === undefined) return `storage unreachable${where}: ${first}`;
  const status = [e.statusCode, e.code].filter((x) => x !== undefined).join(' ');
  const hint =
    e.statusCode === 403 || e.code === 'AuthenticationFailed' || e.code === 'AuthorizationFailure'
      ? ' (check the account name and key in --storage or AzureWebJobsStorage)'
      : '';
  return `storage refused the request${where}: ${status ? `${status}: ` : ''}${first}${hint}`;
}

/**
 * What a failure means, in one line, and the exit code: 2 for usage, 1 for the rest.
 * Errors of the project's own types carry their message; system (fs, net) and storage
 * errors are described by code, also when wrapped as another error's cause.
 */
export function explain(err: unknown): { line: string; exit: number } {
  if (err instanceof UsageError) return { line: err.message, exit: 2 };
  if (err instanceof Error && !GENERIC.has(err.name) && !isStorageError(err) && !isSystemError(err))
    return { line: err.message, exit: 1 };
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (isStorageError(e)) return { line: storageLine(e), exit: 1 };
    if (isSystemError(e)) return { line: describeSystemError(e), exit: 1 };
  }
  const what = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  return {
    line: `unexpected error: ${what.split('\n')[0]} (SFT_DEBUG=1 prints the stack)`,
    exit: 1,
  };
}
