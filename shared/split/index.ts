/**
 * Train / validation / test splits, pure: no I/O.
 *
 * Exports:
 * - parseShares / checkShares / sharesSchema / SplitSharesError: "0.9,0.05,0.05", validated;
 * - assignSplits: samples {id, conversationId, label, clusterId?} → split per id,
 *   counts, targets and deviation per split per class (grouped by conversation and
 *   near-duplicate cluster, order-independent);
 * - apportion: largest-remainder targets; SPLITS, SplitName, SplitInputError.
 */
export {
  SPLITS,
  parseShares,
  checkShares,
  sharesSchema,
  SplitSharesError,
  type SplitName,
  type Shares,
} from './shares';
export {
  assignSplits,
  apportion,
  SplitInputError,
  type SplitInput,
  type SplitResult,
  type ClassCounts,
} from './assign';
