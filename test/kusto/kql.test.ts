import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseSelection, QUERY_NAMES, type QueryName } from '../../shared/source/telemetry';
import {
  countQuery,
  QUERY_PARAMETERS,
  queryParameters,
  thresholdQuery,
  withTable,
} from '../../shared/source/kql';
import { TELEMETRY_COLUMNS, telemetrySchemaText } from '../../shared/source/schema';
import { analyze, globalsWith, TELEMETRY_RESULT } from './language-service';

const DIR = join(process.cwd(), 'queries');
const files = readdirSync(DIR)
  .filter((f) => f.endsWith('.kql'))
  .sort();
const text = (name: string) => readFileSync(join(DIR, name), 'utf8');

/** name → type from a file's `declare query_parameters(...)`. */
function declared(query: string): Record<string, string> {
  const m = /declare\s+query_parameters\s*\(([\s\S]*?)\);/.exec(query);
  if (!m) return {};
  const out: Record<string, string> = {};
  for (const part of m[1]!.split(',')) {
    const [name, type] = part
      .split('=')[0]!
      .split(':')
      .map((s) => s.trim());
    out[name!] = type!;
  }
  return out;
}

const SELECTIONS = {
  sft_session_router_first_turns: parseSelection({
    query: 'sft_session_router_first_turns',
    window: { start: '2026-01-01T00:00:00Z', end: '2026-02-01T00:00:00.1234567Z' },
  }),
  sft_stratified_by_turn_count: parseSelection({
    query: 'sft_stratified_by_turn_count',
    window: {
      start: '2026-01-01T00:00:00Z',
      end: '2026-02-01T00:00:00Z',
      maxConversationSpanMs: 3_723_004,
    },
  }),
};

describe('queries/*.kql under Kusto’s language service', () => {
  beforeAll(() => {
    analyze('print 1'); // load and warm up once (~1.5 s)
  });

  it('holds the seed’s two queries', () => {
    for (const q of QUERY_NAMES) expect(files).toContain(`${q}.kql`);
  });

  it.each(files)('%s parses and analyzes with no diagnostics against the declared schema', (f) => {
    const a = analyze(text(f));
    expect(a.diagnostics).toEqual([]);
  });

  it.each(QUERY_NAMES)('%s returns exactly the telemetry columns, in table order', (q) => {
    expect(analyze(text(`${q}.kql`)).columns).toEqual(TELEMETRY_RESULT);
  });

  it.each(QUERY_NAMES)('%s declares the parameters the source sends, with the same types', (q) => {
    expect(declared(text(`${q}.kql`))).toEqual(QUERY_PARAMETERS[q]);
    const sent = queryParameters(SELECTIONS[q], 8, 3);
    expect(Object.keys(sent).sort()).toEqual(Object.keys(QUERY_PARAMETERS[q]).sort());
  });

  it.each(QUERY_NAMES)('%s: every parameter value sent is a literal of its declared type', (q) => {
    const sent = queryParameters(SELECTIONS[q], 8, 3, { A: { key: 12345, conversationId: "c'1" } });
    for (const [name, type] of Object.entries(QUERY_PARAMETERS[q])) {
      if (type === 'string') continue; // sent raw: Kusto takes a string parameter as is
      const a = analyze(`print x = ${sent[name]}`);
      expect(a.diagnostics, `${name} = ${sent[name]}`).toEqual([]);
      expect(a.columns, `${name} = ${sent[name]}`).toEqual([`x:${type}`]);
    }
  });

  it.each(QUERY_NAMES)(
    '%s: the planner’s count query analyzes and yields shardIndex, rows, bytes',
    (q) => {
      const a = analyze(countQuery(text(`${q}.kql`)));
      expect(a.diagnostics).toEqual([]);
      expect(a.columns).toEqual(['shardIndex:long', 'rows:long', 'bytes:long']);
    },
  );

  it('the complexity signal profile declares the session parameters and yields percentiles per signal', () => {
    const q = text('sft_complexity_signal_profile.kql');
    const session: Record<string, string> = { ...QUERY_PARAMETERS.sft_session_router_first_turns };
    delete session.allTurns;
    expect(declared(q)).toEqual(session);
    expect(analyze(q).columns).toEqual([
      'signal:string',
      'n:long',
      'p10:real',
      'p25:real',
      'p50:real',
      'p75:real',
      'p90:real',
    ]);
  });

  it('the stratified threshold query analyzes and yields each bucket’s last pick', () => {
    const a = analyze(thresholdQuery(text('sft_stratified_by_turn_count.kql')));
    expect(a.diagnostics).toEqual([]);
    expect(a.columns).toEqual([
      'bucket:string',
      'sampleKey:long',
      'conversationId:string',
      'selected:long',
    ]);
  });

  it('a table under another name is reached through the alias the source prepends', () => {
    const globals = globalsWith({ TurnsV2: telemetrySchemaText() });
    const q = text('sft_session_router_first_turns.kql');
    expect(analyze(q, globals).diagnostics.map((d) => d.text)).toContain('Telemetry');
    expect(analyze(withTable(q, 'TurnsV2'), globals).diagnostics).toEqual([]);
  });

  it('reports a deliberately broken query: unknown column, undeclared parameter, syntax error', () => {
    const broken = text('sft_session_router_first_turns.kql')
      .replace('turnIndex == 1\n', 'turnIdx == 1\n')
      .replace('shard < 0 or', 'shard < 0 or nosuchParam > 0 or')
      .replace('| project conversationId;', '| project conversationId,;');
    const a = analyze(broken);
    const texts = a.diagnostics.map((d) => d.text);
    expect(texts).toContain('turnIdx');
    expect(texts).toContain('nosuchParam');
    expect(a.diagnostics.every((d) => d.severity === 'Error')).toBe(true);
    expect(a.diagnostics.length).toBeGreaterThanOrEqual(3);
  });

  it('checks the queries against the schema: dropping a column the queries use is reported', () => {
    const withoutTools = `(${TELEMETRY_COLUMNS.filter((c) => c.name !== 'tools')
      .map((c) => `${c.name}:${c.type}`)
      .join(', ')})`;
    const a = analyze(
      text('sft_stratified_by_turn_count.kql'),
      globalsWith({ Telemetry: withoutTools }),
    );
    expect(a.diagnostics.map((d) => d.text)).toContain('tools');
  });

  it('a column of the wrong type is reported', () => {
    const stringCounts = telemetrySchemaText().replace('turnCount:long', 'turnCount:string');
    const a = analyze(
      text('sft_session_router_first_turns.kql'),
      globalsWith({ Telemetry: stringCounts }),
    );
    expect(a.diagnostics.length).toBeGreaterThan(0);
  });
});

export type { QueryName };
