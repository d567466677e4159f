/**
 * Yield-aware judging: judge in waves only what the balanced dataset needs. The wave
 * planner (which cells to judge next, from the yields seen so far) and the loop that
 * drives a judge with it.
 */
export * from './judge';
export * from './planner';
