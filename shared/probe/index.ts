/**
 * The baseline router probe (issue 17): can a router learn the labels from the text it
 * sees, and do the labels follow the pre-stratification signals more than the text?
 * Pure: the CLI (cli/evaluate.ts) reads the dataset and writes probe.json and
 * label-review.jsonl; the build will call {@link runProbe} the same way.
 */
export {
  EVAL_SETS,
  PROBE_VERSION,
  probeSummaryLines,
  runProbe,
  verdictOf,
  type EvalSet,
  type Evaluation,
  type Figures,
  type ProbeOutcome,
  type ProbeReport,
  type ProbeResult,
  type ReviewItem,
  type SplitCounts,
  type Verdict,
  type VerdictKind,
} from './probe';
export {
  DEFAULT_TEXT_FEATURES,
  SIGNAL_FEATURES,
  routerText,
  signalValues,
  textFeatures,
  type SparseRows,
  type TextFeatureSettings,
} from './features';
export { predict, trainLogistic, type LogisticModel, type LogisticSettings } from './logistic';
export {
  bootstrapAuc,
  classification,
  rocAuc,
  rocCurve,
  routingCurve,
  shareForRecall,
  type ClassificationFigures,
  type RoutingPoint,
} from './metrics';
export { groupedFolds, hashOrder } from './splits';
export {
  ProbeSettingsSchema,
  type ProbeLine,
  type ProbeSettings,
  type ProbeSettingsInput,
  type ProbeSplits,
} from './types';
export {
  PROBE_FILES,
  PROBE_OFF_MESSAGE,
  PROBE_SPLIT_FILES,
  ProbeSplitReader,
  probeGateFailure,
  probeLineProblem,
  probeManifestSection,
  probeReadSplits,
  probeSectionLines,
  type DatasetProbe,
  type ProbeFile,
  type ProbeInput,
  type ProbeStepSettings,
} from './dataset';
