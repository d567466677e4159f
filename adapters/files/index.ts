/**
 * Files on disk: JSONL lines in (gzip by extension), outputs written atomically, the
 * dataset's other formats (chat, classifier, Parquet), the report rendered to SVG/HTML,
 * the telemetry file source, bounded-memory turn sorting, and balancing a large file on
 * several cores. (balance-worker.ts is a worker entry, not re-exported.)
 */
export * from './dataset-formats';
export * from './lines';
export * from './output';
export * from './parallel-balance';
export * from './parquet';
export * from './report';
export * from './source';
export * from './turn-spill';
