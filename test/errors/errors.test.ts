/**
 * Errors by type (shared/errors): the two bases, the classification of SDK and network
 * errors by status and code, and a guard that every error class in the project extends
 * one of the bases. Unit tier: no Azurite.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { RestError } from '@azure/storage-blob';
import { KustoDataErrors } from 'azure-kusto-data';
import { APIConnectionError, APIError, AuthenticationError, RateLimitError } from 'openai';
import { describe, expect, it } from 'vitest';
import {
  BalanceError,
  classifyError,
  isPermanent,
  isTransient,
  PermanentError,
  ShortfallError,
  statusOf,
  TransientError,
} from '../../shared/errors';
import { classifyKustoError } from '../../adapters/kusto/source';
import { SourceTransientError, SourceQueryError } from '../../shared/source/telemetry';
import { UsageError } from '../../cli/args';

const netError = (code: string) => Object.assign(new Error(`connect ${code}`), { code });

describe('the error taxonomy', () => {
  it('sets name to the class, keeps cause, and sorts by type', () => {
    const cause = new Error('root');
    const t = new SourceTransientError('throttled', { cause });
    expect(t.name).toBe('SourceTransientError');
    expect(t.cause).toBe(cause);
    expect(t).toBeInstanceOf(TransientError);
    expect(isTransient(t)).toBe(true);
    expect(isPermanent(t)).toBe(false);

    const p = new ShortfallError('short', { cause });
    expect(p.name).toBe('ShortfallError');
    expect(p).toBeInstanceOf(BalanceError);
    expect(p).toBeInstanceOf(PermanentError);
    expect(classifyError(p)).toBe('permanent');
    expect(classifyError(new SourceQueryError('SEM0100'))).toBe('permanent');
    expect(classifyError(new UsageError('--out is required'))).toBe('permanent');
  });

  it('a name is not a type: a plain Error named like ours is unknown', () => {
    const impostor = new Error('x');
    impostor.name = 'SourceTransientError';
    expect(classifyError(impostor)).toBe('unknown');
    expect(classifyError(new TypeError('bug'))).toBe('unknown');
    expect(classifyError('a string')).toBe('unknown');
    expect(classifyError(null)).toBe('unknown');
  });

  it('storage RestError by status: 408, 429 and 5xx transient, other 4xx permanent', () => {
    const rest = (statusCode: number) => new RestError('storage', { statusCode });
    for (const s of [408, 429, 500, 503])
      expect(classifyError(rest(s)), String(s)).toBe('transient');
    for (const s of [400, 403, 404, 409])
      expect(classifyError(rest(s)), String(s)).toBe('permanent');
    expect(statusOf(rest(503))).toBe(503);
    // No status (the request never got an answer): the network code decides.
    expect(classifyError(new RestError('reset', { code: 'ECONNRESET' }))).toBe('transient');
  });

  it('OpenAI errors by status; a connection error by its cause', () => {
    const headers = new Headers();
    expect(classifyError(new RateLimitError(429, undefined, 'slow down', headers))).toBe(
      'transient',
    );
    expect(classifyError(new APIError(502, undefined, 'bad gateway', headers))).toBe('transient');
    expect(classifyError(new AuthenticationError(401, undefined, 'bad key', headers))).toBe(
      'permanent',
    );
    expect(classifyError(new APIConnectionError({ cause: netError('ECONNRESET') }))).toBe(
      'transient',
    );
    expect(classifyError(new APIConnectionError({ cause: new Error('?') }))).toBe('unknown');
  });

  it("Kusto: the SDK's ThrottlingError (its 429 inside) retries, a 400 does not", () => {
    const axios429 = Object.assign(new Error('Request failed with status code 429'), {
      isAxiosError: true,
      response: { status: 429, headers: {} },
    });
    const throttled = new KustoDataErrors.ThrottlingError('429', axios429);
    expect(classifyError(throttled)).toBe('transient');
    expect(classifyKustoError(throttled)).toEqual({ kind: 'retry' });
    const rejected = Object.assign(new Error('Request failed with status code 400'), {
      isAxiosError: true,
      response: { status: 400, data: { error: { code: 'General_BadRequest' } } },
    });
    expect(classifyKustoError(rejected)).toEqual({ kind: 'permanent' });
    expect(classifyKustoError(netError('ETIMEDOUT'))).toEqual({ kind: 'retry' });
  });

  it('Node network codes are transient, also as a cause', () => {
    for (const code of ['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EAI_AGAIN', 'UND_ERR_SOCKET'])
      expect(isTransient(netError(code)), code).toBe(true);
    expect(isTransient(new Error('wrapped', { cause: netError('EPIPE') }))).toBe(true);
    expect(classifyError(netError('ENOENT'))).toBe('unknown');
  });
});

describe('every error class in the project extends PermanentError or TransientError', () => {
  const root = join(__dirname, '..', '..');
  const files = (dir: string): string[] =>
    readdirSync(join(root, dir), { withFileTypes: true, recursive: true })
      .filter((d) => d.isFile() && d.name.endsWith('.ts'))
      .map((d) => join(d.parentPath, d.name));

  it('no class extends Error (or a built-in error) directly outside shared/errors', () => {
    const direct: string[] = [];
    for (const dir of ['shared', 'adapters', 'functions', 'cli'])
      for (const f of files(dir)) {
        if (f.endsWith(join('shared', 'errors', 'index.ts'))) continue;
        const text = readFileSync(f, 'utf8');
        for (const m of text.matchAll(
          /\bclass\s+(\w+)\s+extends\s+(Error|TypeError|RangeError|SyntaxError)\b/g,
        ))
          direct.push(`${f.slice(root.length + 1)}: ${m[1]}`);
      }
    expect(direct).toEqual([]);
  });
});
