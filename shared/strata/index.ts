/**
 * Stratifiers: the cheap signals of a turn (turn count, message length, complexity,
 * model) turned into stratum values; a stratum is one combination of them.
 */
export * from './strata';
