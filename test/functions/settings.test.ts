/**
 * loadSettings and host.json: one parse of the environment, errors that name the
 * variable, and a host configuration that keeps concurrency small, poisons
 * explicitly and agrees with the settings.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  hostJsonPath,
  queueConcurrency,
  readQueueHostConfig,
} from '../../adapters/storage/host-config';
import { SETTINGS_DOC, SettingsError, loadSettings } from '../../shared/build/settings';

const CONN = 'UseDevelopmentStorage=true';

describe('loadSettings', () => {
  it('fills every default from a connection string alone', () => {
    const s = loadSettings({ AzureWebJobsStorage: CONN });
    expect(s.storage).toEqual({ kind: 'connectionString', connectionString: CONN });
    expect(s.queues).toEqual({ plan: 'sft-plan', shards: 'sft-shards', fanin: 'sft-fanin' });
    expect(s.container).toBe('sft-balancer');
    expect(s.schedule).toBe('0 0 3 * * 1');
    expect(s.judge).toEqual({ name: 'signals', batchSize: 20 });
    expect(s.defaults).toMatchObject({ pipeline: 'session', total: 100_000, ratio: 0.5, seed: 42 });
    expect(s.source).toEqual({ kind: 'blob', path: 'telemetry/telemetry.jsonl' });
    expect(s.minJudgedShare).toBe(0.95);
  });

  it('takes identity-based storage (no keys) as Azure has it', () => {
    const s = loadSettings({
      AzureWebJobsStorage__blobServiceUri: 'https://acct.blob.core.windows.net',
      AzureWebJobsStorage__queueServiceUri: 'https://acct.queue.core.windows.net',
      AzureWebJobsStorage__credential: 'managedidentity',
      AzureWebJobsStorage__clientId: '00000000-0000-0000-0000-000000000001',
    });
    expect(s.storage).toEqual({
      kind: 'identity',
      blobServiceUri: 'https://acct.blob.core.windows.net',
      queueServiceUri: 'https://acct.queue.core.windows.net',
      clientId: '00000000-0000-0000-0000-000000000001',
    });
  });

  it.each([
    [{}, 'AzureWebJobsStorage'],
    [{ AzureWebJobsStorage: CONN, SFT_RATIO: '1' }, 'SFT_RATIO'],
    [{ AzureWebJobsStorage: CONN, SFT_TOTAL: '-3' }, 'SFT_TOTAL'],
    [{ AzureWebJobsStorage: CONN, SFT_PIPELINE: 'batch' }, 'SFT_PIPELINE'],
    [{ AzureWebJobsStorage: CONN, SFT_SHARD_QUEUE: 'Bad_Name' }, 'SFT_SHARD_QUEUE'],
    [{ AzureWebJobsStorage: CONN, SFT_STRATIFY: 'turnBucket,vibes' }, 'SFT_STRATIFY'],
    [{ AzureWebJobsStorage: CONN, SFT_FANIN_LEASE_SECONDS: '5' }, 'SFT_FANIN_LEASE_SECONDS'],
  ])('names the bad variable (%j)', (env, name) => {
    expect(() => loadSettings(env)).toThrow(SettingsError);
    expect(() => loadSettings(env)).toThrow(name);
  });

  it('parses lists, numbers and sources', () => {
    const s = loadSettings({
      AzureWebJobsStorage: CONN,
      SFT_STRATIFY: 'turnBucket, complexity',
      SFT_RATIO: '0.7',
      SFT_SEED: 'weekly',
      SFT_SOURCE: 'file:/data/t.jsonl',
    });
    expect(s.defaults.stratify).toEqual(['turnBucket', 'complexity']);
    expect(s.defaults.ratio).toBe(0.7);
    expect(s.defaults.seed).toBe('weekly');
    expect(s.source).toEqual({ kind: 'file', path: '/data/t.jsonl' });
  });

  it('documents every variable it reads', () => {
    const source = readFileSync(
      join(__dirname, '..', '..', 'shared', 'build', 'settings.ts'),
      'utf8',
    );
    const read = [...source.matchAll(/^\s+(AzureWebJobsStorage\w*|SFT_\w+):/gm)].map((m) => m[1]);
    expect(new Set(read)).toEqual(new Set(Object.keys(SETTINGS_DOC)));
  });
});

describe('host.json', () => {
  const host = JSON.parse(readFileSync(hostJsonPath(), 'utf8'));
  const queues = readQueueHostConfig();

  it('sets the queue message encoding explicitly, to what the senders use', () => {
    expect(host.extensions.queues.messageEncoding).toBe('none');
  });

  it('keeps per-instance concurrency small and the poison behaviour explicit', () => {
    expect(queueConcurrency(queues)).toBeLessThanOrEqual(4);
    expect(host.extensions.queues.maxDequeueCount).toBe(
      loadSettings({ AzureWebJobsStorage: CONN }).maxDequeueCount,
    );
    expect(host.extensions.queues.visibilityTimeout).toMatch(/^\d\d:\d\d:\d\d$/);
  });

  it('uses the v4 extension bundle and the api route prefix', () => {
    expect(host.version).toBe('2.0');
    expect(host.extensionBundle.id).toBe('Microsoft.Azure.Functions.ExtensionBundle');
    expect(host.extensions.http.routePrefix).toBe('api');
  });
});
