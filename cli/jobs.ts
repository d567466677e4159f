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
import { bufferBytes, loadRangeBytes, loadRanges, readFileLines } from '../adapters/files/lines';
import { balanceFileParallel } from '../adapters/files/parallel-balance';
import { emitWorkerFor, type EmitWorker } from '../adapters/files/emit-helper';
import { StreamingAnnotator, type Unlabeled } from '../shared/judge/annotate';
import {
  StreamingBalancer,
  type BalanceManifest,
  type BalanceResult,
  type ByteLoader,
  type RangeLoader,
  type QuarantineRecord,
} from '../shared/balance/balancer';
import type {
  AnnotatedRow,
  DatasetLine,
  QuarantineReason,
  TelemetryTurn,
} from '../shared/contracts/rows';
import type { SplitName } from '../shared/split/index';
import { parseTelemetryLine, telemetryShape } from '../shared/build/batch';
import { MAX_LINE_BYTES } from '../shared/build/spec';
import { Redactor } from '../shared/samples/redact';
import { splitShares, type BalanceConfig } from '../shared/contracts/config';
import { describeJudge, type Judge } from '../shared/judge/types';
import {
  SortedAssembler,
  turnStub,
  type HistoryOptions,
  type Pipeline,
  type Sample,
} from '../shared/samples/assemble';
import { TurnSorter } from '../adapters/files/turn-spill';
import { SampleSpill } from '../adapters/files/sample-spill';
import { Progress } from './progress';
import { NearDedupRefillError, NoValidRowsError } from '../shared/errors/index';
import { startReportRenderer, writeReport, type ReportRenderer } from '../adapters/files/report';
import { writeBuildFormats } from '../adapters/files/dataset-outputs';
import { ProfileBuilder, profileRows, type Profile } from '../shared/report/profile';
import type { WavePlanner, WaveSettingsInput } from '../shared/waves/planner';
import {
  buildManifest,
  judgeSection,
  pipelineSection,
  wavesReport,
  type ManifestCommand,
} from '../shared/report/build-manifest';
import { judgeWaves } from '../shared/waves/judge';
import { probeStep } from '../adapters/files/evaluate-step';
import type { ProbeStepSettings } from '../shared/probe';

/** Scans of the input at most: the margin at least doubles each time (docs/dedup.md "Passes"). */
export const MAX_PASSES = 6;

/** A new balancer over the same input with a wider per-cell margin (a near-dedup refill pass). */
export type Rescan = (margin: number, pass: number) => Promise<StreamingBalancer>;

/** The split files a config writes: train always, validation and test when they have a share. */
const splitsOf = (config: BalanceConfig) =>
  (['train', 'validation', 'test'] as const).filter(
    (s) => s === 'train' || (s === 'validation' ? config.validation : (config.test ?? 0)) > 0,
  );

/**
 * Whether a build's lines are written with an emit worker's help: not when it reads the
 * lines another way (near-dedup) or all in one place (a split).
 */
function emitHelped(config: BalanceConfig): boolean {
  const [, v, t] = splitShares(config);
  return !config.nearDedup && v === 0 && t === 0;
}

export interface JobResult {
  manifest: Record<string, unknown>;
  manifestPath: string;
  /** Why the build fails after writing its set (the probe below SFT_PROBE_MIN_AUC), if it does. */
  failure?: string | null;
}

/**
 * Balances what was offered, writes the dataset, its manifest and report. With a wave
 * planner the balance runs in memory (the wave report needs the delivered rows);
 * otherwise each line is written and profiled as it is made.
 */
async function writeDataset(
  outDir: string,
  balancer: StreamingBalancer,
  quarantine: JsonlWriter,
  head: { command: ManifestCommand; sections: Record<string, unknown> },
  more: {
    planner?: WavePlanner;
    before?: Profile;
    outputs?: Record<string, FileDigest>;
    load?: RangeLoader;
    /** The same lines as bytes: the dataset lines are then written from them (finishRawInto). */
    loadBytes?: ByteLoader;
    /** A worker thread for half the lines' loading and emitting (finishOnce). */
    emitWorker?: () => EmitWorker | null;
    probe?: ProbeStepSettings | undefined;
    rescan?: Rescan;
    /** The report renderer, already started (else one starts here). */
    report?: ReportRenderer;
  } = {},
): Promise<JobResult> {
  // The report's charting warms up on the idle core meanwhile; ended however this ends.
  const report = more.report ?? startReportRenderer();
  try {
    return await writeDatasetWith(outDir, balancer, quarantine, head, more, report);
  } finally {
    report.close();
  }
}

async function writeDatasetWith(
  outDir: string,
  balancer: StreamingBalancer,
  quarantine: JsonlWriter,
  head: Parameters<typeof writeDataset>[3],
  more: NonNullable<Parameters<typeof writeDataset>[4]>,
  report: ReportRenderer,
): Promise<JobResult> {
  const quarantineDigest = await quarantine.close();
  const { result, outputs, after } = await finishPasses(outDir, balancer, more);
  outputs['quarantine.jsonl'] = quarantineDigest;
  Object.assign(outputs, more.outputs);
  // The router probe on the dataset just written (docs/probe.md): its files join the set.
  const probe = await probeStep(outDir, more.probe);
  Object.assign(outputs, probe.outputs);
  const delivered = more.planner ? [...result.train, ...result.validation, ...result.test] : [];
  const manifest = buildManifest({
    ...head,
    ...(more.planner ? { waves: wavesReport(more.planner, delivered) } : {}),
    balance: result.manifest,
    profile: { before: more.before, after },
    extra: probe.manifest,
    outputs,
  });
  const manifestPath = join(outDir, 'manifest.json');
  await writeJson(manifestPath, manifest);
  // The other formats and the card, from the split files and the manifest.
  const formats = await writeBuildFormats(outDir, manifest, balancer.config);
  if (formats) {
    Object.assign(outputs, formats.outputs);
    manifest.formats = formats.section;
    await writeJson(manifestPath, manifest);
  }
  await writeReport(outDir, manifest, report);
  return { manifest, manifestPath, failure: probe.failure };
}

/**
 * Balances and writes the split files (and duplicates.jsonl); when near-dedup runs out
 * of a stratum's candidates, scans again through `rescan` with the margin the error asks for.
 */
async function finishPasses(
  outDir: string,
  first: StreamingBalancer,
  more: Parameters<typeof finishOnce>[2] & { rescan?: Rescan },
): Promise<{ result: BalanceResult; outputs: Record<string, FileDigest>; after: Profile }> {
  let balancer = first;
  for (let pass = 1; ; pass++) {
    try {
      const done = await finishOnce(outDir, balancer, more);
      if (balancer.config.nearDedup)
        done.outputs['duplicates.jsonl'] = await writeJsonl(
          join(outDir, 'duplicates.jsonl'),
          done.result.duplicates,
        );
      return done;
    } catch (err) {
      if (!(err instanceof NearDedupRefillError) || !more.rescan || pass >= MAX_PASSES) throw err;
      balancer = await more.rescan(err.margin, pass + 1);
    }
  }
}

/** A refill pass of `run`: the telemetry quarantine counts and the judged samples offered again. */
function rescanSamples(
  config: BalanceConfig,
  quiet: boolean,
  annotatedPath: string,
  quarantinedBy: Map<string, { reason: QuarantineReason; field?: string; n: number }>,
  offered: readonly AnnotatedRow[] | undefined,
): Rescan {
  return async (margin, pass) => {
    passNote(quiet, pass, margin, annotatedPath);
    const b = new StreamingBalancer(config, { margin, pass });
    for (const q of quarantinedBy.values())
      for (let i = 0; i < q.n; i++) b.recordQuarantine(q.reason, q.field);
    if (offered) for (const row of offered) b.offer(row);
    else
      await readFileLines(annotatedPath, (line, _n, at, len) => {
        if (line.length > 0) b.offerAt(JSON.parse(line) as AnnotatedRow, at, len);
      });
    return b;
  };
}

/** The progress line of an extra scan. */
function passNote(quiet: boolean, pass: number, margin: number, input: string): void {
  new Progress('near-dedup', quiet).done(
    `a stratum ran out of candidates: pass ${pass} reads ${input} again, keeping ${margin} more per stratum`,
  );
}

/** One balance of what was offered: the split files written, or nothing left behind. */
async function finishOnce(
  outDir: string,
  balancer: StreamingBalancer,
  more: {
    planner?: WavePlanner;
    load?: RangeLoader;
    loadBytes?: ByteLoader;
    /** Starts a worker thread to load and emit half the lines (see finishRawInto). */
    emitWorker?: () => EmitWorker | null;
  },
): Promise<{ result: BalanceResult; outputs: Record<string, FileDigest>; after: Profile }> {
  const outputs: Record<string, FileDigest> = {};
  let result: BalanceResult;
  let after: Profile;
  if (more.planner) {
    result = balancer.finish();
    for (const split of splitsOf(balancer.config))
      outputs[`${split}.jsonl`] = await writeJsonl(join(outDir, `${split}.jsonl`), result[split]);
    after = profileRows(balancer.config, [...result.train, ...result.validation, ...result.test]);
  } else {
    // Streamed: each line is written and profiled as it is made, never all held at once.
    const writers = new Map(
      splitsOf(balancer.config).map((s) => [s, new JsonlWriter(join(outDir, `${s}.jsonl`))]),
    );
    const profiler = new ProfileBuilder(balancer.config);
    // Started before the selection, so it is ready when the lines are.
    const helped = more.loadBytes && emitHelped(balancer.config);
    const helper = helped ? (more.emitWorker?.() ?? null) : null;
    const line = (line: DatasetLine, split: SplitName) => {
      writers.get(split)!.write(line);
      profiler.add(line);
    };
    try {
      result = more.loadBytes
        ? await balancer.finishRawInto(
            {
              line,
              raw: (bytes, start, end, split) => writers.get(split)!.writeRaw(bytes, start, end),
              profile: (row) => profiler.addSignals(row),
            },
            more.loadBytes,
            bufferBytes,
            helper?.emit,
          )
        : await balancer.finishInto(line, more.load);
    } catch (err) {
      // Nothing half-written is left behind (a --on-shortfall fail run).
      for (const w of writers.values()) w.abort();
      throw err;
    } finally {
      await helper?.close();
    }
    for (const [split, w] of writers) outputs[`${split}.jsonl`] = await w.close();
    after = profiler.snapshot();
  }
  return { result, outputs, after };
}

/** `balance`: annotated JSONL in, a balanced dataset and its manifest out. */
export async function balanceFile(
  input: string,
  outDir: string,
  config: BalanceConfig,
  /** `source`: what the manifest names as the input (a CSV/Parquet file read through a JSONL copy). */
  opts: {
    quiet: boolean;
    threads?: number;
    source?: string;
    probe?: ProbeStepSettings;
    /** Longer lines are quarantined `line_too_long` (see DEFAULT_BALANCE_MAX_LINE_BYTES). */
    maxLineBytes?: number;
  },
): Promise<JobResult> {
  await ensureDir(outDir);
  const quarantine = new JsonlWriter(join(outDir, 'quarantine.jsonl'));
  const progress = new Progress('balance', opts.quiet);
  const plain = !input.endsWith('.gz');
  // The report's charting and the emit worker start once the scan is done, on the core
  // the single-threaded resolution leaves idle (the scan wants both).
  const early: { report: ReportRenderer | null; emit: EmitWorker | null } = {
    report: null,
    emit: null,
  };
  const helped = plain && emitHelped(config);
  const onScanned = () => {
    early.report ??= startReportRenderer();
    if (helped) early.emit ??= emitWorkerFor(input, opts.threads);
  };
  try {
    const balancer = await balanceFileParallel(input, config, {
      ...(opts.threads !== undefined ? { threads: opts.threads } : {}),
      ...(opts.maxLineBytes !== undefined ? { maxLineBytes: opts.maxLineBytes } : {}),
      onQuarantine: (q) => quarantine.write(q),
      onProgress: (rows) => progress.update(rows, undefined, 'rows read'),
      onScanned,
      // A recording worker goes on as the emit worker (else one starts once scanned).
      ...(helped ? { onEmitWorker: (w: EmitWorker) => (early.emit = w) } : {}),
    });
    const p = balancer.progress;
    progress.done(`${p.rows.toLocaleString('en-US')} rows read, ${p.quarantined} quarantined`);
    return await writeDataset(
      outDir,
      balancer,
      quarantine,
      { command: 'balance', sections: { source: opts.source ?? input } },
      // Gzipped input is read in one pass with lines kept; plain files are re-read by byte range.
      {
        ...(plain
          ? {
              load: (ranges) => loadRanges(input, ranges),
              loadBytes: (ranges) => loadRangeBytes(input, ranges),
              emitWorker: () => early.emit ?? emitWorkerFor(input, opts.threads),
            }
          : {}),
        ...(early.report ? { report: early.report } : {}),
        probe: opts.probe,
        // A near-dedup refill: the file read again (every part) with the wider margin.
        rescan: async (margin, pass) => {
          passNote(opts.quiet, pass, margin, input);
          return balanceFileParallel(input, config, {
            ...(opts.threads !== undefined ? { threads: opts.threads } : {}),
            onQuarantine: () => undefined, // written by the first pass
            balancer: { margin, pass },
          });
        },
      },
    );
  } finally {
    early.report?.close();
    await early.emit?.close();
  }
}

export interface RunOptions {
  /** What the manifest names as the input, when `input` is a JSONL copy of it. */
  source?: string;
  pipeline: Pipeline;
  history: HistoryOptions;
  judge: Judge;
  batchSize: number;
  quiet: boolean;
  /** Redact secrets and personal data before judging and writing (default on). */
  redact?: boolean;
  /** Yield-aware judging in waves (shared/waves/planner.ts) instead of judging every sample. */
  waves?: WaveSettingsInput;
  /** The router probe at the end of the build (default: on, advising). */
  probe?: ProbeStepSettings;
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
  const shape = telemetryShape(config);
  // A line over MAX_LINE_BYTES is read only that far (memory of the limit, whatever its
  // size) and quarantined line_too_long with its size; invalid UTF-8 is kept and counted.
  await readFileLines(
    input,
    (line, lineNo, _at, len, badUtf8) => {
      if ((lineNo & 0x3fff) === 0) progress.update(lineNo, undefined, 'rows read');
      if (badUtf8 && len <= MAX_LINE_BYTES) invalidUtf8Lines++;
      // Cut short (see readFileLines): the line's whole size goes into the detail.
      const cut = len > MAX_LINE_BYTES + 1 ? len : undefined;
      const r = parseTelemetryLine(line, lineNo, config.maxMessageChars, redactor, cut, shape);
      if (r === null) return;
      if ('quarantine' in r) onBad(r.quarantine);
      else onTurn(r.turn);
    },
    undefined,
    { maxLineBytes: MAX_LINE_BYTES, checkUtf8: true },
  );
  return { invalidUtf8Lines };
}

/** Counts per cause of the samples the judge left unlabeled. */
function countCauses(unlabeled: Iterable<Unlabeled>): Record<string, number> {
  const byCause: Record<string, number> = {};
  for (const u of unlabeled) byCause[u.error] = (byCause[u.error] ?? 0) + 1;
  return byCause;
}

/**
 * `run`: telemetry → samples → judge → balance, in one process, in bounded memory.
 * The valid turns are sorted by conversation on disk (TurnSorter); each conversation
 * becomes samples as soon as its turns are read back, each sample is judged in its
 * batch and written to annotated.jsonl, and the balancer keeps only the byte range of
 * a candidate's line there, reading the selected lines back at the end. What stays in
 * memory per input row is the balancer's fingerprints (see StreamingBalancer).
 * With --waves the samples go to a temporary file (SampleSpill): the planner, which
 * chooses among all of them, holds a small item per sample, and reads each wave back.
 */
export async function runPipeline(
  input: string,
  outDir: string,
  config: BalanceConfig,
  opts: RunOptions,
): Promise<JobResult> {
  await ensureDir(outDir);
  const balancer = new StreamingBalancer(config);
  const quarantine = new JsonlWriter(join(outDir, 'quarantine.jsonl'));
  const read = await readSorted(input, config, opts, balancer, quarantine);
  const judgeProgress = new Progress(`judge (${opts.judge.name})`, opts.quiet, {
    ...(opts.judge.stats ? { spend: () => opts.judge.stats?.() } : {}),
  });
  const out = new JudgedOutputs(outDir, config);
  const made = await assembleAndJudge(read, config, opts, balancer, out, judgeProgress);
  if (made.sampleCount === 0) {
    made.held?.dispose();
    await quarantine.close();
    throw noSamples(read, made.stats, outDir);
  }
  let waves: Awaited<ReturnType<typeof judgeWaves>> | null = null;
  if (made.held)
    waves = await judgeHeldInWaves(made.held, config, opts, balancer, out, judgeProgress);
  const o = out.open();
  const calls = waves ? waves.annotated.calls : made.calls;
  judgeProgress.done(
    `${o.labelled.toLocaleString('en-US')} labelled, ${o.unlabeledCount} unlabeled, ${calls} calls` +
      (waves ? ` in ${waves.planner.history.length} waves (${waves.planner.state})` : ''),
  );
  const annotatedDigest = await o.annotated.close();
  const unlabeledDigest = await o.unlabeled.close();
  return writeDataset(
    outDir,
    balancer,
    quarantine,
    { command: 'run', sections: runSections(input, opts, read, made, o, waves, calls) },
    {
      ...(waves ? { planner: waves.planner } : {}),
      before: o.before.snapshot(),
      outputs: { 'annotated.jsonl': annotatedDigest, 'unlabeled.jsonl': unlabeledDigest },
      // Candidates were kept as byte ranges of annotated.jsonl: the selected ones are read back.
      ...(waves
        ? {}
        : {
            load: (ranges) => loadRanges(out.annotatedPath, ranges),
            loadBytes: (ranges) => loadRangeBytes(out.annotatedPath, ranges),
          }),
      probe: opts.probe,
      // A near-dedup refill: the judged samples offered again (annotated.jsonl read back).
      rescan: rescanSamples(
        config,
        opts.quiet,
        out.annotatedPath,
        read.quarantinedBy,
        waves?.offered,
      ),
    },
  );
}

/** The manifest sections of a `run`: source, telemetry, pipeline, redaction and the judge. */
function runSections(
  input: string,
  opts: RunOptions,
  read: ReadTelemetry,
  made: Awaited<ReturnType<typeof assembleAndJudge>>,
  o: ReturnType<JudgedOutputs['open']>,
  waves: Awaited<ReturnType<typeof judgeWaves>> | null,
  calls: number,
) {
  // Which judge labelled the data, and what its calls cost (tokens × the price table).
  const judgeStats = opts.judge.stats?.();
  return {
    source: opts.source ?? input,
    telemetry: { invalidUtf8Lines: read.invalidUtf8Lines },
    pipeline: pipelineSection(opts.pipeline, opts.history, made.stats),
    redaction: read.redactor.summary(),
    judge: judgeSection({
      name: opts.judge.name,
      calls,
      batchSize: opts.batchSize,
      samplesJudged: waves ? waves.planner.judged : made.sampleCount,
      labelled: o.labelled,
      unlabeled: o.unlabeledCount,
      unlabeledByCause: o.byCause,
      ...(opts.judge.stats ? { stats: opts.judge.stats() } : {}),
      labelledBy: describeJudge(opts.judge),
      usage: judgeStats && judgeStats.calls > 0 ? judgeStats : null,
      ...(waves ? { byWave: waves.usageByWave } : {}),
    }),
  };
}

type QuarantineTally = Map<string, { reason: QuarantineReason; field?: string; n: number }>;

/** What reading the telemetry leaves: the valid turns sorted on disk, and what was set aside. */
interface ReadTelemetry {
  sorter: TurnSorter;
  turns: number;
  invalidUtf8Lines: number;
  redactor: Redactor;
  progress: Progress;
  quarantinedByReason: Record<string, number>;
  /** Telemetry quarantine counts by reason and field, replayed into a refill pass's balancer. */
  quarantinedBy: QuarantineTally;
}

/** Reads, checks and redacts the telemetry; valid turns go to a TurnSorter, bad ones to quarantine. */
async function readSorted(
  input: string,
  config: BalanceConfig,
  opts: RunOptions,
  balancer: StreamingBalancer,
  quarantine: JsonlWriter,
): Promise<ReadTelemetry> {
  const sorter = new TurnSorter();
  const r: ReadTelemetry = {
    sorter,
    turns: 0,
    invalidUtf8Lines: 0,
    redactor: new Redactor({ enabled: opts.redact ?? true }),
    progress: new Progress('read', opts.quiet),
    quarantinedByReason: {},
    quarantinedBy: new Map(),
  };
  const onBad = (q: QuarantineRecord) => {
    balancer.recordQuarantine(q.reason, q.field);
    const k = `${q.reason} ${q.field ?? ''}`;
    const c = r.quarantinedBy.get(k) ?? {
      reason: q.reason,
      ...(q.field ? { field: q.field } : {}),
      n: 0,
    };
    c.n++;
    r.quarantinedBy.set(k, c);
    r.quarantinedByReason[q.reason] = (r.quarantinedByReason[q.reason] ?? 0) + 1;
    quarantine.write(q);
  };
  const onTurn = (t: TelemetryTurn) => {
    r.turns++;
    // A session sample is a first turn; of the others only what completeness needs.
    sorter.add(opts.pipeline === 'session' && t.turnIndex !== 1 ? turnStub(t) : t);
  };
  try {
    const read = await readTelemetry(input, config, onTurn, onBad, r.progress, r.redactor);
    r.invalidUtf8Lines = read.invalidUtf8Lines;
  } catch (err) {
    sorter.dispose();
    throw err;
  }
  return r;
}

/** annotated.jsonl and unlabeled.jsonl, opened with the first sample (none when there is none). */
class JudgedOutputs {
  readonly annotatedPath: string;
  private out: {
    annotated: JsonlWriter;
    unlabeled: JsonlWriter;
    /** Bytes written to annotated.jsonl so far: where the next line starts. */
    at: number;
    labelled: number;
    unlabeledCount: number;
    byCause: Record<string, number>;
    before: ProfileBuilder;
  } | null = null;

  constructor(
    private readonly outDir: string,
    private readonly config: BalanceConfig,
  ) {
    this.annotatedPath = join(outDir, 'annotated.jsonl');
  }

  open() {
    return (this.out ??= {
      annotated: new JsonlWriter(this.annotatedPath),
      unlabeled: new JsonlWriter(join(this.outDir, 'unlabeled.jsonl')),
      at: 0,
      labelled: 0,
      unlabeledCount: 0,
      byCause: {},
      before: new ProfileBuilder(this.config),
    });
  }

  /** A labelled row: written, and offered to the balancer as its byte range in annotated.jsonl. */
  row(row: AnnotatedRow, balancer: StreamingBalancer): void {
    const o = this.open();
    const len = Buffer.byteLength(JSON.stringify(row), 'utf8');
    o.annotated.write(row);
    balancer.offerAt(row, o.at, len);
    o.at += len + 1;
    o.labelled++;
    o.before.add(row);
  }

  unlabeled(u: Unlabeled): void {
    const o = this.open();
    o.unlabeled.write(u);
    o.unlabeledCount++;
    o.byCause[u.error] = (o.byCause[u.error] ?? 0) + 1;
  }
}

/**
 * Sorted turns → samples a conversation at a time; without waves each is judged in its
 * batch at once, with waves they go to a SampleSpill for the planner.
 */
async function assembleAndJudge(
  read: ReadTelemetry,
  config: BalanceConfig,
  opts: RunOptions,
  balancer: StreamingBalancer,
  out: JudgedOutputs,
  judgeProgress: Progress,
) {
  const annotator = new StreamingAnnotator(
    opts.judge,
    opts.batchSize,
    { row: (row) => out.row(row, balancer), unlabeled: (u) => out.unlabeled(u) },
    (done) => judgeProgress.update(done, undefined),
  );
  const held = opts.waves ? new SampleSpill(config) : null;
  let pending: Sample[] = [];
  let sampleCount = 0;
  const assembler = new SortedAssembler(opts.pipeline, opts.history, (made) => {
    sampleCount += made.length;
    if (held) for (const s of made) held.add(s);
    else for (const s of made) pending.push(s);
  });
  try {
    for (const turn of read.sorter.sorted()) {
      assembler.add(turn);
      if (pending.length >= opts.batchSize) {
        const batch = pending;
        pending = [];
        for (const s of batch) await annotator.push(s);
      }
    }
  } catch (err) {
    held?.dispose();
    throw err;
  } finally {
    read.sorter.dispose();
  }
  const stats = assembler.end();
  read.progress.done(
    `${read.turns.toLocaleString('en-US')} valid turns, ${stats.complete.toLocaleString('en-US')} complete conversations, ` +
      `${sampleCount.toLocaleString('en-US')} ${opts.pipeline} samples` +
      (read.invalidUtf8Lines > 0
        ? `, ${read.invalidUtf8Lines} lines with invalid UTF-8 (kept)`
        : ''),
  );
  if (sampleCount > 0) {
    for (const s of pending) await annotator.push(s);
    await annotator.flush();
  }
  return { stats, sampleCount, held, calls: annotator.calls };
}

/** No sample came out of the telemetry: why, with the quarantine's reasons. */
function noSamples(
  read: ReadTelemetry,
  stats: ReturnType<SortedAssembler['end']>,
  outDir: string,
): NoValidRowsError {
  const set = Object.entries(read.quarantinedByReason);
  return new NoValidRowsError(
    `no samples: ${read.turns} valid turns in ${stats.conversations} conversations, ${stats.incomplete} of them incomplete` +
      (set.length > 0
        ? `; quarantined ${set.map(([r, n]) => `${n} ${r}`).join(', ')} (see ${join(outDir, 'quarantine.jsonl')})`
        : ''),
  );
}

/** Waves judge only what the dataset needs, chosen among all the held samples. */
async function judgeHeldInWaves(
  held: SampleSpill,
  config: BalanceConfig,
  opts: RunOptions,
  balancer: StreamingBalancer,
  out: JudgedOutputs,
  judgeProgress: Progress,
) {
  const waves = await judgeWaves(held, config, opts.judge, opts.waves!, {
    batchSize: opts.batchSize,
    onProgress: (done, wave) => judgeProgress.update(done, undefined, `judged, wave ${wave}`),
  }).finally(() => held.dispose());
  const o = out.open();
  for (const row of waves.annotated.rows) {
    o.annotated.write(row);
    o.before.add(row);
  }
  for (const u of waves.annotated.unlabeled) o.unlabeled.write(u);
  o.labelled = waves.annotated.rows.length;
  o.unlabeledCount = waves.annotated.unlabeled.length;
  o.byCause = countCauses(waves.annotated.unlabeled);
  for (const row of waves.offered) balancer.offer(row);
  return waves;
}

export type { BalanceManifest };
