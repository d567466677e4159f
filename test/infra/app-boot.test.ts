/**
 * The function app starts on the settings infra/main.bicep deploys: functions/index.ts
 * (the real entry point: loadSettings, createDeps, the registry) runs with those app
 * settings as its environment, and what it registers with the host is checked: no
 * HTTP function is anonymous, every queue trigger listens on a queue the Bicep
 * creates, through the identity-based AzureWebJobsStorage connection. Only the
 * host's `app` object is replaced, to record the registrations.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { deploy } from './deployment';

const registered = vi.hoisted(() => ({
  http: [] as { name: string; options: Record<string, unknown> }[],
  queue: [] as { name: string; options: Record<string, unknown> }[],
  timer: [] as { name: string; options: Record<string, unknown> }[],
}));

vi.mock('@azure/functions', async (importOriginal) => {
  const actual = await importOriginal<Record<string, unknown>>();
  const record =
    (kind: keyof typeof registered) => (name: string, options: Record<string, unknown>) => {
      registered[kind].push({ name, options });
    };
  return {
    ...actual,
    app: { http: record('http'), storageQueue: record('queue'), timer: record('timer') },
  };
});

describe('functions/index.ts on the deployed app settings', () => {
  const d = deploy({});
  const saved = { ...process.env };

  beforeAll(async () => {
    for (const k of Object.keys(process.env))
      if (/^(SFT_|JUDGE_|AzureWebJobsStorage|AZURE_)/.test(k)) delete process.env[k];
    Object.assign(process.env, d.appSettings);
    await import('../../functions/index.js');
  });

  afterAll(() => {
    process.env = saved;
  });

  it('registers HTTP functions, none of them anonymous', () => {
    expect(registered.http.length).toBeGreaterThan(0);
    for (const fn of registered.http) expect(fn.options.authLevel, fn.name).toBe('function');
  });

  it('registers every queue trigger on a queue the Bicep creates', () => {
    expect(registered.queue.length).toBeGreaterThan(0);
    for (const fn of registered.queue) {
      expect(d.queues, fn.name).toContain(fn.options.queueName);
      // The host resolves connection "X" from the X__* identity settings.
      expect(d.appSettings[`${String(fn.options.connection)}__queueServiceUri`]).toMatch(
        /^https:\/\//,
      );
    }
  });

  it('listens on every created queue', () => {
    expect(registered.queue.map((f) => f.options.queueName).sort()).toEqual([...d.queues].sort());
  });

  it('schedules the timer with the deployed SFT_SCHEDULE', () => {
    expect(registered.timer.map((t) => t.options.schedule)).toEqual([d.appSettings.SFT_SCHEDULE]);
  });
});
