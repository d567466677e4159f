/**
 * Azure Data Explorer (Kusto): the seed's queries (queries/*.kql) run through
 * azure-kusto-data as a TelemetrySource, sharded under Kusto's result limits; SDK errors
 * sorted into retry, truncation or permanent.
 */
export * from './source';
