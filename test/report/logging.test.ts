import { InvocationContext } from '@azure/functions';
import { describe, expect, it } from 'vitest';
import { structuredContext } from '../../functions/lib/logging';
import { registrations } from '../../functions/registry';
import { formatLogLine, logFieldsOf } from '../../shared/util/log';
import { testDeps } from '../functions/harness';

function capture(functionName = 'judgeBatch') {
  const lines: { level: string; text: string }[] = [];
  const context = new InvocationContext({
    invocationId: 'inv-1',
    functionName,
    triggerMetadata: { dequeueCount: 1 },
    logHandler: (level, ...args) => lines.push({ level, text: args.map(String).join(' ') }),
  });
  return { lines, context };
}

describe('structured logs', () => {
  it.each([
    [{ kind: 'shard', buildId: 'b-1', shardId: 's00003' }, 'b-1', 's00003'],
    ['{"kind":"fanin","buildId":"b-2"}', 'b-2', null],
    [{ params: { id: 'b-3' }, method: 'GET' }, 'b-3', null],
    ['not json', null, null],
    [null, null, null],
    [{ buildId: 42 }, null, null],
  ])('reads the build and batch of trigger %j', (trigger, buildId, batchId) => {
    expect(logFieldsOf(trigger)).toEqual({ buildId, batchId });
  });

  it('formats one JSON object a line with both ids', () => {
    const line = formatLogLine('warning', ['lease lost', new Error('boom')], {
      buildId: 'b-1',
      batchId: null,
      fn: 'fanIn',
    });
    expect(JSON.parse(line)).toEqual({
      level: 'warning',
      msg: 'lease lost Error: boom',
      buildId: 'b-1',
      batchId: null,
      fn: 'fanIn',
    });
    expect(line).not.toContain('\n');
  });

  it('turns every log method of a context into a structured line at its level', () => {
    const { lines, context } = capture();
    const c = structuredContext(context, { buildId: 'b-9', shardId: 's00001' });
    c.log('a');
    c.warn('b');
    c.error('c');
    expect(lines.map((l) => l.level)).toEqual(['information', 'warning', 'error']);
    for (const l of lines)
      expect(JSON.parse(l.text)).toMatchObject({
        buildId: 'b-9',
        batchId: 's00001',
        fn: 'judgeBatch',
        invocationId: 'inv-1',
      });
    expect(c.triggerMetadata).toEqual({ dequeueCount: 1 });
    expect(c).toBeInstanceOf(InvocationContext);
  });

  it('a registered handler logs with the ids of its message (real handler, Azurite)', async () => {
    const deps = testDeps();
    await deps.store.ensureContainer();
    const judge = registrations(deps).find((r) => r.name === 'judgeBatch')!;
    const { lines, context } = capture();
    await (judge.handler as (m: unknown, c: InvocationContext) => Promise<void>)(
      { kind: 'shard', buildId: 'b-missing', shardId: 's00007' },
      context,
    );
    expect(lines.length).toBeGreaterThan(0);
    for (const l of lines)
      expect(JSON.parse(l.text)).toMatchObject({ buildId: 'b-missing', batchId: 's00007' });
    expect(JSON.parse(lines[0]!.text).msg).toContain('no build b-missing');
  });
});
