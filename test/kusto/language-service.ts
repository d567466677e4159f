/**
 * Kusto's own parser and semantic checker (@kusto/language-service-next), loaded once
 * per test file: the bridge scripts define the global `Kusto` namespace.
 */
import { createRequire } from 'node:module';
import { join } from 'node:path';
import {
  TELEMETRY_COLUMNS,
  TELEMETRY_TABLE,
  telemetrySchemaText,
} from '../../shared/source/schema';

/* eslint-disable @typescript-eslint/no-explicit-any */
export interface Diagnostic {
  severity: string;
  code: string;
  message: string;
  text: string;
}

export interface Analysis {
  diagnostics: Diagnostic[];
  /** Result columns as name:type, when the query yields a table. */
  columns: string[] | null;
}

let kusto: any;

function load(): any {
  if (!kusto) {
    const req = createRequire(join(process.cwd(), 'package.json'));
    req('@kusto/language-service-next/bridge.min.js');
    req('@kusto/language-service-next/Kusto.Language.Bridge.min.js');
    kusto = (globalThis as any).Kusto;
  }
  return kusto;
}

/** Globals with one database holding the telemetry table (or another schema / name). */
export function globalsWith(
  tables: Record<string, string> = { [TELEMETRY_TABLE]: telemetrySchemaText() },
): unknown {
  const K = load();
  const symbols: unknown[] = Object.entries(tables).map(([name, schema]): unknown =>
    K.Language.Symbols.TableSymbol.From(schema).WithName(name),
  );
  const db = new K.Language.Symbols.DatabaseSymbol.ctor('telemetry', symbols);
  return K.Language.GlobalState.Default.WithDatabase(db);
}

export function analyze(query: string, globals: unknown = globalsWith()): Analysis {
  const K = load();
  const code = K.Language.KustoCode.ParseAndAnalyze(query, globals);
  const d = code.GetDiagnostics();
  const diagnostics: Diagnostic[] = [];
  for (let i = 0; i < d.Count; i++) {
    const x = d.getItem(i);
    diagnostics.push({
      severity: String(x.Severity),
      code: String(x.Code),
      message: String(x.Message),
      text: query.substr(x.Start, x.Length),
    });
  }
  const rt = code.ResultType;
  let columns: string[] | null = null;
  if (rt && rt.Columns) {
    columns = [];
    for (let i = 0; i < rt.Columns.Count; i++) {
      const c = rt.Columns.getItem(i);
      columns.push(`${c.Name}:${c.Type.Name}`);
    }
  }
  return { diagnostics, columns };
}

/** The telemetry columns as name:type, in table order. */
export const TELEMETRY_RESULT = TELEMETRY_COLUMNS.map((c) => `${c.name}:${c.type}`);
