/**
 * Small pure utilities with no domain: hashing, a seeded PRNG, a fingerprint hash
 * table, NCRONTAB schedules (Azure Functions timers) and structured log lines.
 */
export * from './fptable';
export * from './hash';
export * from './log';
export * from './ncrontab';
export * from './prng';
