/**
 * The telemetry source the settings choose (kusto | file) built with its real clients,
 * and any source as JSONL lines for the plan step (`kusto:QUERY` included).
 */
export * from './telemetry';
