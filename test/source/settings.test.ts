import { BlobServiceClient } from '@azure/storage-blob';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, inject, it, vi } from 'vitest';
import { openSource, SourceNotFoundError } from '../../adapters/storage/source';
import { loadSettings, SettingsError } from '../../shared/build/settings';
import { FileSource } from '../../adapters/files/source';
import { KustoSource } from '../../adapters/kusto/source';
import {
  createTelemetrySource,
  kustoLineSource,
  KustoSourceError,
  selectedLines,
} from '../../adapters/source/telemetry';
import { checkTurn } from '../../shared/contracts/rows';
import { generateTelemetry } from '../../shared/source/generate';
import {
  loadSourceSettings,
  SourceSettingsError,
  trailingWindow,
} from '../../shared/source/settings';
import { TELEMETRY_COLUMNS } from '../../shared/source/schema';
import { PermanentError } from '../../shared/errors';
import { SourceQueryError } from '../../shared/source/telemetry';
import { startV2Server, v2Frames } from '../kusto/v2-server';

const NOW = new Date('2026-11-25T16:00:00Z');

describe('source settings', () => {
  it('file source: a path, a container blob or an https blob URL', () => {
    const base = { SFT_TELEMETRY_SOURCE: 'file' };
    expect(
      loadSourceSettings({ ...base, SFT_TELEMETRY_FILE: 'file:/data/t.jsonl.gz' }, NOW),
    ).toMatchObject({
      source: 'file',
      file: { kind: 'path', path: '/data/t.jsonl.gz' },
    });
    expect(
      loadSourceSettings({ ...base, SFT_TELEMETRY_FILE: 'blob:exports/2026/t.jsonl' }, NOW)
        .source === 'file' &&
        loadSourceSettings({ ...base, SFT_TELEMETRY_FILE: 'blob:exports/2026/t.jsonl' }, NOW),
    ).toMatchObject({
      file: { kind: 'container', container: 'exports', name: '2026/t.jsonl' },
    });
    expect(
      loadSourceSettings(
        { ...base, SFT_TELEMETRY_FILE: 'https://acct.blob.core.windows.net/c/t.jsonl' },
        NOW,
      ),
    ).toMatchObject({
      file: { kind: 'url' },
    });
    expect(() => loadSourceSettings({ ...base, SFT_TELEMETRY_FILE: 'ftp://x/y' }, NOW)).toThrow(
      /SFT_TELEMETRY_FILE: expected file:PATH/,
    );
    expect(() => loadSourceSettings(base, NOW)).toThrow(SourceSettingsError);
  });

  it('kusto source: cluster and database required; defaults for the rest; the trailing window by default', () => {
    expect(() => loadSourceSettings({ SFT_TELEMETRY_SOURCE: 'kusto' }, NOW)).toThrow(
      /needs SFT_KUSTO_CLUSTER_URI and SFT_KUSTO_DATABASE/,
    );
    const s = loadSourceSettings(
      {
        SFT_TELEMETRY_SOURCE: 'kusto',
        SFT_KUSTO_CLUSTER_URI: 'https://c.westeurope.kusto.windows.net',
        SFT_KUSTO_DATABASE: 'copilot',
      },
      NOW,
    );
    expect(s).toEqual({
      source: 'kusto',
      kusto: {
        clusterUri: 'https://c.westeurope.kusto.windows.net',
        database: 'copilot',
        table: 'Telemetry',
        serverTimeoutMs: 600_000,
        maxRetries: 5,
      },
      selection: {
        query: 'sft_session_router_first_turns',
        turns: 'first',
        window: {
          start: '2026-11-18T00:00:00.000Z',
          end: '2026-11-25T00:00:00.000Z',
          maxConversationSpanMs: 86_400_000,
        },
      },
    });
    expect(trailingWindow(NOW, 1)).toEqual({
      start: '2026-11-24T00:00:00.000Z',
      end: '2026-11-25T00:00:00.000Z',
    });
  });

  it('stratified selection: buckets and seed from settings, bad ones named', () => {
    const env = {
      SFT_TELEMETRY_FILE: 'file:x.jsonl',
      SFT_QUERY: 'sft_stratified_by_turn_count',
      SFT_WINDOW_START: '2026-10-01T00:00:00Z',
      SFT_WINDOW_END: '2026-11-01T00:00:00Z',
      SFT_BUCKETS: '[{"name":"S","min":1,"max":4,"cap":10},{"name":"L","min":5,"max":40,"cap":5}]',
      SFT_SELECTION_SEED: 'run-7',
    };
    expect(loadSourceSettings(env, NOW).selection).toMatchObject({
      seed: 'run-7',
      buckets: [
        { name: 'S', cap: 10 },
        { name: 'L', cap: 5 },
      ],
    });
    expect(() =>
      loadSourceSettings(
        {
          ...env,
          SFT_BUCKETS:
            '[{"name":"S","min":1,"max":5,"cap":1},{"name":"L","min":5,"max":9,"cap":1}]',
        },
        NOW,
      ),
    ).toThrow(/selection buckets: buckets must not overlap/);
    expect(() => loadSourceSettings({ ...env, SFT_WINDOW_END: 'yesterday' }, NOW)).toThrow(
      /selection window.end/,
    );
    expect(() => loadSourceSettings({ ...env, SFT_QUERY: 'nope' }, NOW)).toThrow(/SFT_QUERY/);
  });
});

describe('createTelemetrySource and selectedLines', () => {
  const dir = mkdtempSync(join(tmpdir(), 'source-settings-'));
  const rows = [...generateTelemetry({ conversations: 300, seed: 5 })].map((t) =>
    JSON.stringify(t),
  );
  rows.splice(
    10,
    0,
    JSON.stringify({
      ...JSON.parse(rows[10]!),
      turnIndex: 1,
      numRequests: -3,
      conversationId: 'bad-1',
      turnCount: 1,
    }),
  );
  const path = join(dir, 't.jsonl');
  writeFileSync(path, rows.join('\n'));
  const window = {
    SFT_WINDOW_START: '2026-10-01T00:00:00Z',
    SFT_WINDOW_END: '2026-11-01T00:00:00Z',
  };

  it('builds a FileSource from a path and streams its selection as lines, bad rows included whole', async () => {
    const settings = loadSourceSettings({ SFT_TELEMETRY_FILE: `file:${path}`, ...window });
    const source = createTelemetrySource(settings, { credential: null });
    expect(source).toBeInstanceOf(FileSource);
    const sel = selectedLines(source, settings.selection, { maxRows: 60, headroom: 1 });
    const bytes = await sel.size();
    expect(bytes).toBeGreaterThan(0);
    const lines = [];
    for await (const batch of sel.lines()) lines.push(...batch);
    expect(sel.plan!.shardCount).toBeGreaterThan(1);
    expect(lines.length).toBe(sel.plan!.totals.rows);
    expect(lines.map((l) => l.lineNo)).toEqual(lines.map((_, i) => i + 1));
    const parsed = lines.map((l) => JSON.parse(l.line) as Record<string, unknown>);
    expect(parsed.every((r) => r.turnIndex === 1)).toBe(true);
    const bad = parsed.filter((r) => checkTurn(r) !== null);
    expect(bad.map((r) => r.conversationId)).toEqual(['bad-1']);
  });

  it('builds a FileSource over a blob in the app’s storage (Azurite)', async () => {
    const { connectionString } = inject('azurite');
    const blobService = BlobServiceClient.fromConnectionString(connectionString);
    const container = `src-${randomUUID()}`;
    await blobService.getContainerClient(container).create();
    await blobService
      .getContainerClient(container)
      .getBlockBlobClient('t.jsonl')
      .upload(rows.join('\n'), Buffer.byteLength(rows.join('\n')));
    const settings = loadSourceSettings({
      SFT_TELEMETRY_FILE: `blob:${container}/t.jsonl`,
      ...window,
    });
    const source = createTelemetrySource(settings, { credential: null, blobService });
    const plan = await source.planShards(settings.selection);
    const fromDisk = await FileSource.fromPath(path).planShards(settings.selection);
    expect(plan.totals).toEqual(fromDisk.totals);
  });

  it('builds a KustoSource from settings and reads through it', async () => {
    const columns = TELEMETRY_COLUMNS.map((c) => ({ ColumnName: c.name, ColumnType: c.type }));
    const turn = JSON.parse(rows[0]!) as Record<string, unknown>;
    const server = await startV2Server((req) =>
      req.body.csl.includes('summarize rows = count()')
        ? {
            status: 200,
            body: v2Frames(
              [
                { ColumnName: 'shardIndex', ColumnType: 'long' },
                { ColumnName: 'rows', ColumnType: 'long' },
                { ColumnName: 'bytes', ColumnType: 'long' },
              ],
              [[0, 1, 300]],
            ),
          }
        : { status: 200, body: v2Frames(columns, [TELEMETRY_COLUMNS.map((c) => turn[c.name])]) },
    );
    try {
      const settings = loadSourceSettings({
        SFT_TELEMETRY_SOURCE: 'kusto',
        SFT_KUSTO_CLUSTER_URI: server.url,
        SFT_KUSTO_DATABASE: 'db1',
        SFT_KUSTO_TABLE: 'TurnsV2',
        ...window,
      });
      const source = createTelemetrySource(settings, { credential: null, runId: 'r' });
      expect(source).toBeInstanceOf(KustoSource);
      const lines = [];
      for await (const batch of selectedLines(source, settings.selection).lines())
        lines.push(...batch);
      expect(lines).toHaveLength(1);
      expect(JSON.parse(lines[0]!.line)).toMatchObject({ conversationId: turn.conversationId });
      expect(server.requests.map((r) => r.body.db)).toEqual(['db1', 'db1']);
      expect(
        server.requests.every((r) => r.body.csl.startsWith("let Telemetry = ['TurnsV2'];\n")),
      ).toBe(true);
      (source as KustoSource).close();
    } finally {
      await server.close();
    }
  });

  it('kustoLineSource (the plan step’s seam): whole conversations for the session query; permanent errors typed', async () => {
    const columns = TELEMETRY_COLUMNS.map((c) => ({ ColumnName: c.name, ColumnType: c.type }));
    const turn = JSON.parse(rows[0]!) as Record<string, unknown>;
    let reject = false;
    const server = await startV2Server((req) =>
      reject
        ? {
            status: 400,
            body: {
              error: {
                code: 'General_BadRequest',
                message: 'bad',
                '@message': 'SEM0100: no table',
              },
            },
          }
        : req.body.csl.includes('summarize rows = count()')
          ? {
              status: 200,
              body: v2Frames(
                [
                  { ColumnName: 'shardIndex', ColumnType: 'long' },
                  { ColumnName: 'rows', ColumnType: 'long' },
                  { ColumnName: 'bytes', ColumnType: 'long' },
                ],
                [[0, 1, 300]],
              ),
            }
          : { status: 200, body: v2Frames(columns, [TELEMETRY_COLUMNS.map((c) => turn[c.name])]) },
    );
    try {
      const env = { SFT_KUSTO_CLUSTER_URI: server.url, SFT_KUSTO_DATABASE: 'db1', ...window };
      const src = kustoLineSource('sft_session_router_first_turns', env, {
        credential: null,
      });
      expect(await src.size()).toBe(300);
      const lines = [];
      for await (const batch of src.lines()) lines.push(...batch);
      expect(lines).toHaveLength(1);
      expect(
        server.requests.every((r) => r.body.properties!.Parameters!.allTurns === 'bool(true)'),
      ).toBe(true);

      reject = true;
      const failing = kustoLineSource('sft_session_router_first_turns', env, {
        credential: null,
      });
      const rejected = await failing.size().catch((err: unknown) => err);
      // The rejected query is permanent by type (no name strings): the plan step fails the build.
      expect(rejected).toBeInstanceOf(KustoSourceError);
      expect(rejected).toBeInstanceOf(PermanentError);
      expect((rejected as Error).cause).toBeInstanceOf(SourceQueryError);
      const unset = kustoLineSource('sft_stratified_by_turn_count', {}, { credential: null });
      await expect(unset.size()).rejects.toThrow(
        /kusto:sft_stratified_by_turn_count: SFT_TELEMETRY_SOURCE=kusto needs SFT_KUSTO_CLUSTER_URI/,
      );
    } finally {
      await server.close();
    }
  });

  it('the build settings accept SFT_SOURCE=kusto:QUERY and the plan step opens it as a Kusto line source', async () => {
    const CONN = 'UseDevelopmentStorage=true';
    const s = loadSettings({
      AzureWebJobsStorage: CONN,
      SFT_SOURCE: 'kusto:sft_stratified_by_turn_count',
    });
    expect(s.source).toEqual({ kind: 'kusto', path: 'sft_stratified_by_turn_count' });
    expect(() =>
      loadSettings({ AzureWebJobsStorage: CONN, SFT_SOURCE: 'kusto:drop_everything' }),
    ).toThrow(SettingsError);
    const opened = openSource(s.source, () => {
      throw new Error('a Kusto source needs no blob store');
    });
    expect(opened.name).toBe('kusto:sft_stratified_by_turn_count');
    // No SFT_KUSTO_* settings here: a permanent failure the plan step records, not a retry.
    vi.stubEnv('SFT_KUSTO_CLUSTER_URI', '');
    try {
      // Typed as permanent, not disguised as a missing file.
      const err = await opened.size().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(PermanentError);
      expect(err).not.toBeInstanceOf(SourceNotFoundError);
    } finally {
      vi.unstubAllEnvs();
    }
  });
});
