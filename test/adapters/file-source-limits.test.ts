/**
 * Issue 13 item 12 on the source path (FileSource, the `file` selection source): a line
 * over MAX_LINE_BYTES, even 50 MB with no newline, is quarantined `line_too_long` with
 * its number and size (not its content), and lines with invalid UTF-8 are kept and
 * counted. Before, the runaway line was read whole and judged as JSON.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FileSource } from '../../adapters/files/source';
import { MAX_LINE_BYTES } from '../../shared/build/spec';
import type { TelemetryTurn } from '../../shared/contracts/rows';
import { parseSelection, type SourceQuarantineRecord } from '../../shared/source/telemetry';

const dir = mkdtempSync(join(tmpdir(), 'file-source-limits-'));
const window = {
  start: '2026-03-01T00:00:00Z',
  end: '2026-04-01T00:00:00Z',
  maxConversationSpanMs: 86_400_000,
};
const selection = parseSelection({ query: 'sft_session_router_first_turns', window });
const turn = (id: string, userMessage: string) =>
  JSON.stringify({
    conversationId: id,
    turnIndex: 1,
    turnCount: 1,
    userMessage,
    model: 'gpt-4o',
    numRequests: 1,
    turnDurationMs: 900,
    promptTokenDelta: 40,
    tools: [],
    timestamp: '2026-03-05T10:00:00Z',
  });

describe('FileSource limits', () => {
  it('quarantines a runaway line with its size, keeps and counts invalid UTF-8', async () => {
    // A valid JSON row over the limit (it was read and kept before), then a 50 MB tail.
    const long = turn('long', 'y'.repeat(MAX_LINE_BYTES + 10));
    const tail = '{"conversationId":"' + 'x'.repeat(50 * MAX_LINE_BYTES);
    const path = join(dir, 'runaway.jsonl');
    const [before, after] = turn('b', 'caf@').split('@') as [string, string];
    writeFileSync(
      path,
      Buffer.concat([
        Buffer.from(turn('a', 'hello') + '\n' + long + '\n' + before),
        Buffer.from([0xe9]), // "café" in Latin-1: not UTF-8
        Buffer.from(after + '\n' + tail),
      ]),
    );
    const turns: TelemetryTurn[] = [];
    const quarantined: SourceQuarantineRecord[] = [];
    const source = FileSource.fromPath(path, 32_000_000);
    const stats = await source.readShard(
      { source: 'file', selection, shardCount: 1, index: 0 },
      { onTurn: (t) => turns.push(t), onQuarantine: (q) => quarantined.push(q) },
    );
    expect(quarantined.map((q) => [q.line, q.reason, q.detail])).toEqual([
      [
        2,
        'line_too_long',
        `line is ${Buffer.byteLength(long)} bytes, over the limit of ${MAX_LINE_BYTES} bytes`,
      ],
      [
        4,
        'line_too_long',
        `line is ${Buffer.byteLength(tail)} bytes, over the limit of ${MAX_LINE_BYTES} bytes`,
      ],
    ]);
    expect(quarantined.every((q) => (q.raw ?? '').length <= 501)).toBe(true);
    expect(turns.map((t) => [t.conversationId, t.userMessage])).toEqual([
      ['a', 'hello'],
      ['b', 'caf\uFFFD'],
    ]);
    expect(stats).toMatchObject({ quarantined: 2, invalidUtf8Lines: 1 });
    expect(stats.quarantinedByReason).toEqual({ line_too_long: 2 });
  }, 60_000);
});
