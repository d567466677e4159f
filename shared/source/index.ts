/**
 * The telemetry source: the TelemetrySource contract and its shard plan, the table's
 * schema, the selection of queries/*.kql mirrored in TypeScript, the KQL literals sent to
 * Kusto, the source settings and references (`blob:PATH`, `kusto:QUERY`), and the
 * deterministic synthetic telemetry of demos and tests.
 */
export * from './generate';
export * from './kql';
export * from './ref';
export * from './schema';
export * from './selection';
export * from './settings';
export * from './telemetry';
