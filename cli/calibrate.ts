/**
 * `sft-balancer calibrate`: a judge against a human-labelled file. Prints accuracy,
 * Cohen's kappa, the confusion matrix and per-stratum agreement (and, for a panel,
 * how its judges agreed); --json writes the report.
 */
import { readFileLines } from '../adapters/files/lines';
import { writeJson } from '../adapters/files/output';
import { annotateSamples } from '../shared/judge/annotate';
import { BalanceConfigSchema, STRATIFIERS, type StratifierName } from '../shared/contracts/config';
import { checkAnnotated, defaultSampleId, type AnnotatedRow } from '../shared/contracts/rows';
import {
  calibrationReport,
  formatCalibration,
  type CalibrationPair,
} from '../shared/judge/calibrate';
import type { PanelAgreement } from '../shared/judge/panel';
import { RUBRIC_VERSION } from '../shared/judge/rubric';
import type { Sample } from '../shared/samples/assemble';
import { Redactor } from '../shared/samples/redact';
import { strataKey, strataOf, turnPosition } from '../shared/strata/strata';
import { required, UsageError } from './args';
import {
  JUDGE_HELP,
  JUDGE_OPTIONS,
  judgeFromFlags,
  parseFlags,
  publicSettings,
  withJudgeErrors,
} from './annotate';
import { Progress } from './progress';

export const CALIBRATE_HELP = `Usage: sft-balancer calibrate --gold FILE [--stratify LIST] [--json FILE] [judge options]

Judges every row of a human-labelled file (annotated rows: a telemetry turn plus "label",
optional "sampleId" and "history") and compares the judge's labels with the gold ones.
Unlabeled verdicts count against coverage, not accuracy.

  --gold FILE               human-labelled JSONL
  --stratify LIST           strata for per-stratum agreement (default turnBucket)
  --json FILE               also write the report as JSON
  --no-redact               send e-mails, phones, IPs, keys and tokens to the judge as they are
                            (redacted by default, as in production builds)
${JUDGE_HELP}
  -q, --quiet               no progress on stderr`;

export function cmdCalibrate(argv: string[]): Promise<number> {
  return withJudgeErrors('calibrate', () => calibrate(argv));
}

async function calibrate(argv: string[]): Promise<number> {
  const v = parseFlags(argv, {
    gold: { type: 'string' },
    stratify: { type: 'string' },
    json: { type: 'string' },
    'no-redact': { type: 'boolean' },
    ...JUDGE_OPTIONS,
  });
  if (v.help) {
    process.stdout.write(`${CALIBRATE_HELP}\n`);
    return 0;
  }
  const gold = required(v, 'gold');
  const stratify = (typeof v.stratify === 'string' ? v.stratify : 'turnBucket')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean) as StratifierName[];
  for (const s of stratify)
    if (!STRATIFIERS.includes(s)) throw new UsageError(`--stratify: unknown stratifier "${s}"`);
  const config = BalanceConfigSchema.parse({});
  const rows: AnnotatedRow[] = [];
  // The judge sees gold messages as it sees production ones: redacted.
  const redactor = new Redactor({ enabled: v['no-redact'] !== true });
  let invalid = 0;
  await readFileLines(gold, (line) => {
    if (line.trim() === '') return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      invalid++;
      return;
    }
    if (checkAnnotated(value) !== null) {
      invalid++;
      return;
    }
    const row = value as AnnotatedRow;
    rows.push({
      ...row,
      userMessage: redactor.text(row.userMessage),
      ...(row.history ? { history: row.history.map((h) => redactor.text(h)) } : {}),
    });
  });
  if (rows.length === 0) throw new UsageError(`no valid labelled rows in ${gold}`);
  const samples: Sample[] = rows.map((r) => ({
    ...r,
    sampleId: r.sampleId ?? defaultSampleId(r),
    history: r.history ?? [],
    position: turnPosition(r.turnIndex, r.turnCount),
  }));
  const { judge, settings, chunk } = await judgeFromFlags(v);
  const progress = new Progress(`calibrate (${judge.name})`, v.quiet === true);
  const result = await annotateSamples(samples, judge, {
    batchSize: Math.min(chunk, samples.length),
    onProgress: (done, total) => progress.update(done, total),
  });
  progress.done(`${result.rows.length} labelled, ${result.unlabeled.length} unlabeled`);
  const predicted = new Map(result.rows.map((r) => [r.sampleId!, r.label]));
  const pairs: CalibrationPair[] = samples.map((s, i) => {
    const strata = strataOf(s, stratify, config);
    return {
      gold: rows[i]!.label,
      predicted: predicted.get(s.sampleId) ?? null,
      stratum: strata ? strataKey(strata, stratify) : 'outside strata',
    };
  });
  const report = calibrationReport(pairs);
  const panel = (judge as Partial<{ agreement(): PanelAgreement }>).agreement?.();
  let text = formatCalibration(report, judge.name);
  if (invalid) text += `\n(${invalid} gold lines were not valid labelled rows and were skipped)`;
  if (panel) {
    text += `\n\npanel agreement: unanimous ${(panel.unanimous * 100).toFixed(1)}%, split ${panel.split}\n`;
    panel.judges.forEach((a, i) => {
      const cells = panel.judges
        .map((b, j) => (i < j ? `${b} ${(panel.pairwise[i]![j]! * 100).toFixed(1)}%` : null))
        .filter(Boolean);
      if (cells.length) text += `  ${a} vs ${cells.join(', ')}\n`;
    });
  }
  process.stdout.write(`${text.trimEnd()}\n`);
  if (typeof v.json === 'string') {
    await writeJson(v.json, {
      gold,
      judge: judge.name,
      rubricVersion: RUBRIC_VERSION,
      settings: publicSettings(settings),
      stratify,
      invalidGoldLines: invalid,
      redaction: redactor.summary(),
      report,
      ...(panel ? { panel } : {}),
      ...(judge.stats ? { usage: judge.stats() } : {}),
    });
  }
  return 0;
}
