/**
 * Samples: telemetry turns assembled into samples for the two pipelines (first turns of
 * sessions, turns of whole conversations with their history) and the redaction of
 * secrets and personal data before any text leaves the build.
 */
export * from './assemble';
export * from './redact';
