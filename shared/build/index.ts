/**
 * The serverless build, pure parts: what a build is (its spec, messages, markers and
 * outcome), its settings read from the environment, one judge batch (lines in,
 * samples, quarantine and verdicts out) and the wave plan of a yield-aware build.
 */
export * from './batch';
export * from './settings';
export * from './spec';
export * from './waves';
