/**
 * Judging: the judge contract (a batch of samples in, one verdict per sample out) and
 * the judges the core knows without an SDK: the signals judge, the LLM judge's logic
 * (rubric, verdict parsing, cache keys, throttling, Batch API files, usage and prices),
 * replay, a panel; annotation of samples, calibration against human labels, settings.
 */
export * from './annotate';
export * from './batch';
export * from './cache-key';
export * from './calibrate';
export * from './llm';
export * from './panel';
export * from './prices';
export * from './replay';
export * from './rubric';
export * from './settings';
export * from './signals';
export * from './throttle';
export * from './types';
export * from './usage';
export * from './verdicts';
