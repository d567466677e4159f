/**
 * Data contracts: the shapes that cross a boundary, validated by zod at the edge: the
 * balance configuration (what a dataset is made of) and the rows (telemetry turns,
 * annotated rows, quarantine records).
 */
export * from './config';
export * from './rows';
