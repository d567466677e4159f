import { describe, expect, it } from 'vitest';
import { checkTurn, TelemetryTurnSchema, TURN_FIELDS } from '../../shared/contracts/rows';
import {
  createTableCommand,
  TELEMETRY_COLUMNS,
  telemetrySchemaText,
  type KqlType,
} from '../../shared/source/schema';

/** A value of each KQL type as Kusto's v2 JSON carries it. */
const SAMPLE: Record<KqlType, unknown> = {
  string: 'abc',
  long: 7,
  real: 1.5,
  datetime: '2026-03-02T10:00:00.1234567Z',
  dynamic: ['read_file'],
};

const goodRow = () =>
  Object.fromEntries(TELEMETRY_COLUMNS.map((c) => [c.name, SAMPLE[c.type]])) as Record<
    string,
    unknown
  >;

describe('the declared telemetry table and the zod TelemetryTurn schema', () => {
  it('declare the same fields, in the same order', () => {
    expect(TELEMETRY_COLUMNS.map((c) => c.name)).toEqual([...TURN_FIELDS]);
  });

  it('a row of the declared column types is a valid turn (zod and the hot-path check agree)', () => {
    const r = goodRow();
    expect(TelemetryTurnSchema.safeParse(r).success).toBe(true);
    expect(checkTurn(r)).toBeNull();
  });

  it.each(TELEMETRY_COLUMNS.map((c) => [c.name, c.type] as const))(
    'column %s (%s): a value of any other KQL type is rejected on that field',
    (name, type) => {
      for (const other of Object.keys(SAMPLE) as KqlType[]) {
        if (other === type) continue;
        // long and real both arrive as JSON numbers: a whole real is a valid long, and a long a valid real.
        if (
          (type === 'long' && other === 'real' && Number.isInteger(SAMPLE.real)) ||
          (type === 'real' && other === 'long')
        )
          continue;
        if (type === 'string' && other === 'datetime') continue; // datetimes arrive as strings
        const r = { ...goodRow(), [name]: SAMPLE[other] };
        const parsed = TelemetryTurnSchema.safeParse(r);
        expect(parsed.success, `${name} = ${JSON.stringify(SAMPLE[other])} (${other})`).toBe(false);
        expect(parsed.error!.issues[0]!.path[0]).toBe(name);
        expect(checkTurn(r)?.field).toBe(name);
      }
    },
  );

  it('a long column rejects a fractional number', () => {
    for (const c of TELEMETRY_COLUMNS.filter((c) => c.type === 'long')) {
      expect(TelemetryTurnSchema.safeParse({ ...goodRow(), [c.name]: 2.5 }).success, c.name).toBe(
        false,
      );
    }
  });

  it('renders the Kusto schema and the command that creates the table', () => {
    expect(telemetrySchemaText()).toBe(
      '(conversationId:string, turnIndex:long, turnCount:long, userMessage:string, model:string, numRequests:long, turnDurationMs:real, promptTokenDelta:long, tools:dynamic, timestamp:datetime)',
    );
    expect(createTableCommand('Turns')).toBe(`.create-merge table Turns ${telemetrySchemaText()}`);
  });
});
