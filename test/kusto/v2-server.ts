/**
 * A local HTTP server that speaks enough of Kusto's v2 REST protocol to drive the real
 * azure-kusto-data client: GET /v1/rest/auth/metadata answers 404 (the SDK then uses
 * public-cloud defaults) and POST /v2/rest/query answers whatever the test's handler
 * returns, as v2 frames. Every query request is recorded as it arrived.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';

export interface RecordedRequest {
  headers: IncomingHttpHeaders;
  body: {
    db: string;
    csl: string;
    properties?: { Options?: Record<string, unknown>; Parameters?: Record<string, string> };
  };
}

export type Answer = { status: number; body: unknown; headers?: Record<string, string> };
export type Handler = (req: RecordedRequest, n: number) => Answer;

export interface Column {
  ColumnName: string;
  ColumnType: string;
}

const QCI_COLUMNS: Column[] = [
  ['Timestamp', 'datetime'],
  ['ClientRequestId', 'string'],
  ['ActivityId', 'guid'],
  ['SubActivityId', 'guid'],
  ['ParentActivityId', 'guid'],
  ['Level', 'int'],
  ['LevelName', 'string'],
  ['StatusCode', 'int'],
  ['StatusCodeName', 'string'],
  ['EventType', 'int'],
  ['EventTypeName', 'string'],
  ['Payload', 'string'],
].map(([ColumnName, ColumnType]) => ({ ColumnName: ColumnName!, ColumnType: ColumnType! }));

const ACTIVITY = '00000000-0000-0000-0000-000000000001';

export const TRUNCATION_ERROR = {
  error: {
    code: 'LimitsExceeded',
    message: 'Request is invalid and cannot be executed.',
    '@type': 'Kusto.Data.Exceptions.KustoServicePartialQueryFailureLimitsExceededException',
    '@message':
      'Query execution has exceeded the allowed limits (80DA0003): The results of this query exceed the set limit of 500000 records, so not all records were returned (E_QUERY_RESULT_SET_TOO_LARGE, 0x80DA0003, max #records=500000). See https://aka.ms/kustoquerylimits for more information and possible solutions..',
    '@permanent': false,
  },
};

/** A successful (or partially failed) v2 response: the frames a query returns. */
export function v2Frames(
  columns: Column[],
  rows: unknown[],
  opts: {
    crid?: string;
    partialFailure?: typeof TRUNCATION_ERROR;
    /** false: the failure only inside the rows (as with deferpartialqueryfailures off and no status). */
    flagged?: boolean;
  } = {},
): unknown[] {
  const failure = opts.partialFailure;
  const flagged = failure !== undefined && opts.flagged !== false;
  const qciRow = (level: number, name: string, payload: string) => [
    '2026-01-01T00:00:00Z',
    opts.crid ?? 'test',
    ACTIVITY,
    ACTIVITY,
    ACTIVITY,
    level,
    name,
    level === 2 ? -2133196797 : 0,
    level === 2 ? 'E_QUERY_RESULT_SET_TOO_LARGE (0x80DA0003)' : 'S_OK (0)',
    level === 2 ? 4 : 4,
    'QueryInfo',
    payload,
  ];
  return [
    { FrameType: 'DataSetHeader', IsProgressive: false, Version: 'v2.0' },
    {
      FrameType: 'DataTable',
      TableId: 0,
      TableKind: 'QueryProperties',
      TableName: '@ExtendedProperties',
      Columns: [
        { ColumnName: 'TableId', ColumnType: 'int' },
        { ColumnName: 'Key', ColumnType: 'string' },
        { ColumnName: 'Value', ColumnType: 'dynamic' },
      ],
      Rows: [[1, 'Visualization', { Visualization: null }]],
    },
    {
      FrameType: 'DataTable',
      TableId: 1,
      TableKind: 'PrimaryResult',
      TableName: 'PrimaryResult',
      Columns: columns,
      Rows: failure ? [...rows, { OneApiErrors: [failure] }] : rows,
    },
    {
      FrameType: 'DataTable',
      TableId: 2,
      TableKind: 'QueryCompletionInformation',
      TableName: 'QueryCompletionInformation',
      Columns: QCI_COLUMNS,
      Rows: flagged
        ? [qciRow(2, 'Error', JSON.stringify(failure))]
        : [qciRow(4, 'Info', '{"Count":1,"Text":"Query completed successfully"}')],
    },
    flagged
      ? {
          FrameType: 'DataSetCompletion',
          HasErrors: true,
          Cancelled: false,
          OneApiErrors: [failure],
        }
      : { FrameType: 'DataSetCompletion', HasErrors: false, Cancelled: false },
  ];
}

/** A OneApiErrors body for a failed request (429, 400, ...). */
export function oneApiError(code: string, message: string): unknown {
  return {
    error: {
      code,
      message,
      '@type': `Kusto.Data.Exceptions.${code}`,
      '@message': message,
      '@permanent': code !== 'TooManyRequests',
    },
  };
}

export interface V2Server {
  url: string;
  requests: RecordedRequest[];
  metadataRequests: number;
  setHandler(h: Handler): void;
  close(): Promise<void>;
}

export async function startV2Server(initial: Handler): Promise<V2Server> {
  let handler = initial;
  const state: V2Server = {
    url: '',
    requests: [],
    metadataRequests: 0,
    setHandler: (h) => (handler = h),
    close: () =>
      new Promise((resolve, reject) => {
        server.closeAllConnections();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method === 'GET' && req.url === '/v1/rest/auth/metadata') {
        state.metadataRequests++;
        res.writeHead(404).end();
        return;
      }
      if (req.method !== 'POST' || req.url !== '/v2/rest/query') {
        res.writeHead(404).end();
        return;
      }
      let raw = Buffer.concat(chunks);
      if (req.headers['content-encoding'] === 'gzip') raw = gunzipSync(raw);
      const recorded: RecordedRequest = {
        headers: req.headers,
        body: JSON.parse(raw.toString('utf8')) as RecordedRequest['body'],
      };
      state.requests.push(recorded);
      const answer = handler(recorded, state.requests.length);
      res.writeHead(answer.status, {
        'Content-Type': 'application/json; charset=utf-8',
        'x-ms-client-request-id': String(req.headers['x-ms-client-request-id'] ?? ''),
        ...answer.headers,
      });
      res.end(JSON.stringify(answer.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return state;
}
