/**
 * Where a build reads its telemetry, as a setting or a request names it: `blob:PATH`,
 * `file:PATH` or `kusto:QUERY`. Shared by the build spec and the settings (kept apart
 * from both so neither imports the other).
 */
import { z } from 'zod';
import { QUERY_NAMES } from './telemetry';

/** Names a container or queue may take: lowercase letters, digits and single hyphens. */
export const storageName = (max: number) =>
  z
    .string()
    .min(3)
    .max(max)
    .regex(
      /^[a-z0-9](?:[a-z0-9]|-(?!-))*[a-z0-9]$/,
      'must be 3+ lowercase letters, digits or single hyphens',
    );

/** `blob:PATH` (in the build container, or `blob:CONTAINER/PATH` with container=) or `file:PATH`. */
export const SourceRefSchema = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('blob'),
    /** Blob name in the build container (or in `container`). */
    path: z.string().min(1).max(1024),
    container: storageName(63).optional(),
    /** The parts' format when their names do not say (`inputFormat` in a request). */
    format: z.enum(['jsonl', 'csv', 'parquet']).optional(),
  }),
  z.object({ kind: z.literal('file'), path: z.string().min(1).max(4096) }),
  /** `kusto:QUERY`: queries/QUERY.kql with the SFT_KUSTO_* settings (shared/source/settings.ts). */
  z.object({ kind: z.literal('kusto'), path: z.enum(QUERY_NAMES) }),
]);
export type SourceRef = z.infer<typeof SourceRefSchema>;

/** Parses `blob:telemetry/x.jsonl` or `file:/data/x.jsonl` (a bare path is a blob name). */
export function parseSourceRef(text: string): SourceRef {
  if (text.startsWith('file:')) return { kind: 'file', path: text.slice(5) };
  // The query name is checked by SourceRefSchema, which every caller applies.
  if (text.startsWith('kusto:')) return { kind: 'kusto', path: text.slice(6) } as SourceRef;
  return { kind: 'blob', path: text.startsWith('blob:') ? text.slice(5) : text };
}
