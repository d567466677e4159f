/**
 * `sft-balancer serve`: the Functions app on this machine as Core Tools would serve
 * it, for machines without Core Tools. The queue functions run on the local queue
 * host (as for `run`); the HTTP functions of functions/registry.ts answer on
 * `http://HOST:PORT/api/<route>` with real `HttpRequest` objects; the timer fires on
 * its NCRONTAB schedule and on `POST /admin/functions/<name>`. Function keys are
 * emulated: `x-functions-key` header or `code` query, the key from SFT_FUNCTION_KEY
 * or generated at start.
 */
import { randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  HttpRequest,
  InvocationContext,
  type HttpResponseInit,
  type Timer,
} from '@azure/functions';
import { startAzurite, type AzuriteHandle } from '../adapters/local/azurite';
import { LocalQueueHost } from '../adapters/local/queue-host';
import { readQueueHostConfig } from '../adapters/storage/host-config';
import { createDeps } from '../functions/lib/deps';
import {
  registrations,
  type HttpFunction,
  type QueueFunction,
  type TimerFunction,
} from '../functions/registry';
import { parseNcrontab, CronError, type Cron } from '../shared/util/ncrontab';
import { SettingsError, loadSettings, type Settings } from '../shared/build/settings';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UsageError, required } from './args';
import { sha256File } from './local-runner';

export interface ServeOptions {
  port: number;
  host: string;
  storage?: string;
  /** A telemetry file uploaded at start and used by builds that name no source. */
  input?: string;
  /** Settings (SFT_*) come from here; AzureWebJobsStorage is set by serve. */
  env: Record<string, string | undefined>;
  verbose: boolean;
  quiet: boolean;
  /** Resolves when serving should stop (a signal); tests may pass their own. */
  stopped?: Promise<void>;
}

/** A compiled route: `builds/{id}` → a regex and its parameter names. */
interface Route {
  fn: HttpFunction;
  pattern: RegExp;
  names: string[];
}

function compileRoute(fn: HttpFunction): Route {
  const names: string[] = [];
  const source = fn.route
    .split('/')
    .map((seg) => {
      const m = /^\{(\w+)\??\}$/.exec(seg);
      if (!m) return seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      names.push(m[1]!);
      return '([^/]+)';
    })
    .join('/');
  return { fn, pattern: new RegExp(`^/api/${source}/?$`, 'i'), names };
}

const sameKey = (given: string | null, key: string): boolean => {
  if (given === null) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(key);
  return a.length === b.length && timingSafeEqual(a, b);
};

async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const chunk of req) {
    n += (chunk as Buffer).length;
    // Past the limit the rest is drained and dropped: the handler sees Content-Length.
    if (n <= limit) chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

function send(res: ServerResponse, init: HttpResponseInit): void {
  const headers: Record<string, string> = {};
  const given = init.headers;
  if (given) {
    const entries: Iterable<[string, string]> =
      typeof (given as Headers).forEach === 'function' && !Array.isArray(given)
        ? (() => {
            const out: [string, string][] = [];
            (given as Headers).forEach((v, k) => out.push([k, v]));
            return out;
          })()
        : Array.isArray(given)
          ? given
          : Object.entries(given as Record<string, string>);
    for (const [k, v] of entries) headers[k] = v;
  }
  let body: string | Buffer = '';
  if (init.jsonBody !== undefined) {
    body = JSON.stringify(init.jsonBody);
    headers['content-type'] ??= 'application/json; charset=utf-8';
  } else if (typeof init.body === 'string') {
    body = init.body;
    headers['content-type'] ??= 'text/plain; charset=utf-8';
  } else if (init.body instanceof Uint8Array || Buffer.isBuffer(init.body)) {
    body = Buffer.from(init.body);
  }
  res.writeHead(init.status ?? 200, headers);
  res.end(body);
}

const json = (res: ServerResponse, status: number, body: unknown) =>
  send(res, { status, jsonBody: body });

/** The function key: SFT_FUNCTION_KEY, or 32 random bytes in base64url. */
export function functionKeyOf(env: Record<string, string | undefined>): {
  key: string;
  generated: boolean;
} {
  const given = env.SFT_FUNCTION_KEY;
  if (given !== undefined && given !== '') return { key: given, generated: false };
  return { key: randomBytes(32).toString('base64url'), generated: true };
}

export async function serve(opts: ServeOptions): Promise<void> {
  const t0 = Date.now();
  const say = (text: string) => {
    if (!opts.quiet) process.stderr.write(`${text}\n`);
  };
  const log = (level: string, fn: string, text: string) => {
    if (opts.quiet) return;
    if (opts.verbose || level === 'error' || level === 'warning')
      process.stderr.write(`[${((Date.now() - t0) / 1000).toFixed(1)} s] [${fn}] ${text}\n`);
  };
  let azurite: AzuriteHandle | undefined;
  const stopping: (() => Promise<void>)[] = [];
  try {
    if (!opts.storage) azurite = await startAzurite();
    const connection = opts.storage ?? azurite!.connectionString;
    let settings: Settings;
    try {
      settings = loadSettings({ ...opts.env, AzureWebJobsStorage: connection });
    } catch (err) {
      if (err instanceof SettingsError) throw new UsageError(err.message);
      throw err;
    }
    let cron: Cron;
    try {
      cron = parseNcrontab(settings.schedule);
    } catch (err) {
      if (err instanceof CronError) throw new UsageError(`SFT_SCHEDULE: ${err.message}`);
      throw err;
    }
    let deps = createDeps(settings, {}, opts.env);
    await deps.store.ensureContainer();
    if (opts.input !== undefined) {
      // As `run` does: the file uploaded once under its sha256, the default source of builds.
      const sha = await sha256File(opts.input);
      const path = `sources/${sha}.jsonl`;
      if (!(await deps.store.exists(path))) await deps.store.uploadFile(path, opts.input);
      settings = { ...settings, source: { kind: 'blob', path } };
      deps = createDeps(settings, {}, opts.env);
    }
    const { key, generated } = functionKeyOf(opts.env);
    const fns = registrations(deps);
    const routes = fns.filter((f): f is HttpFunction => f.kind === 'http').map(compileRoute);
    const timers = fns.filter((f): f is TimerFunction => f.kind === 'timer');

    const host = new LocalQueueHost({
      service: deps.clients.queues,
      functions: fns.filter((f): f is QueueFunction => f.kind === 'queue'),
      config: readQueueHostConfig(),
      log,
    });
    host.start();
    stopping.push(() => host.stop());

    const context = (functionName: string, trigger: Record<string, unknown> = {}) =>
      new InvocationContext({
        invocationId: randomUUID(),
        functionName,
        triggerMetadata: trigger,
        logHandler: (level, ...args) => log(level, functionName, args.map(String).join(' ')),
      });

    const fireTimer = async (fn: TimerFunction, isPastDue: boolean): Promise<void> => {
      const timer: Timer = {
        isPastDue,
        schedule: { adjustForDST: false },
        scheduleStatus: { last: '', next: cron.next(new Date()).toISOString(), lastUpdated: '' },
      };
      try {
        await fn.handler(timer, context(fn.name));
        log('information', fn.name, 'fired');
      } catch (err) {
        log('error', fn.name, `failed: ${(err as Error).message}`);
      }
    };
    // Each timer is armed for its next slot, then re-armed after it fires.
    const armed = new Map<string, NodeJS.Timeout>();
    const arm = (fn: TimerFunction) => {
      const c = parseNcrontab(fn.schedule);
      const wait = Math.max(0, c.next(new Date()).getTime() - Date.now());
      // setTimeout holds at most ~24.8 days: a longer wait re-arms on the way.
      const MAX = 2 ** 31 - 1;
      armed.set(
        fn.name,
        setTimeout(
          () => {
            if (wait > MAX) return arm(fn);
            void fireTimer(fn, false).finally(() => arm(fn));
          },
          Math.min(wait, MAX),
        ),
      );
    };
    timers.forEach(arm);
    stopping.push(() => {
      armed.forEach((t) => clearTimeout(t));
      return Promise.resolve();
    });

    const server = createServer((req, res) => {
      void (async () => {
        const url = new URL(req.url ?? '/', `http://${req.headers.host ?? 'localhost'}`);
        const method = (req.method ?? 'GET').toUpperCase();
        const given = req.headers['x-functions-key'];
        const keyGiven = (Array.isArray(given) ? given[0] : given) ?? url.searchParams.get('code');
        const unauthorized = () =>
          json(res, 401, {
            error: 'unauthorized',
            message: 'missing or wrong function key (x-functions-key header or code query)',
          });

        const admin = /^\/admin\/functions\/([^/]+)\/?$/.exec(url.pathname);
        if (admin) {
          if (!sameKey(keyGiven, key)) return unauthorized();
          const fn = timers.find((t) => t.name.toLowerCase() === admin[1]!.toLowerCase());
          if (!fn || method !== 'POST')
            return json(res, 404, { error: 'not_found', message: `no timer "${admin[1]}"` });
          await readBody(req, 0);
          await fireTimer(fn, false);
          return send(res, { status: 202 });
        }
        for (const r of routes) {
          const m = r.pattern.exec(url.pathname);
          if (!m || !r.fn.methods.includes(method as 'GET' | 'POST')) continue;
          if (r.fn.authLevel === 'function' && !sameKey(keyGiven, key)) return unauthorized();
          const params: Record<string, string> = {};
          r.names.forEach((n, i) => (params[n] = decodeURIComponent(m[i + 1]!)));
          const headers: Record<string, string> = {};
          for (const [k, v] of Object.entries(req.headers))
            if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : v;
          const body = await readBody(req, settings.maxBodyBytes + 1);
          const request = new HttpRequest({
            method,
            url: url.href,
            headers,
            params,
            query: Object.fromEntries(url.searchParams),
            ...(body.length > 0 ? { body: { bytes: body } } : {}),
          });
          const out = await r.fn.handler(request, context(r.fn.name));
          log('information', r.fn.name, `${method} ${url.pathname} → ${out.status ?? 200}`);
          return send(res, out);
        }
        await readBody(req, 0);
        json(res, 404, { error: 'not_found', message: `no function at ${method} ${url.pathname}` });
      })().catch((err: unknown) => {
        log('error', 'http', (err as Error).stack ?? String(err));
        if (!res.headersSent)
          json(res, 500, { error: 'internal', message: 'the function failed; see the log' });
        else res.end();
      });
    });
    // Idle connections kept as long as the Functions host's Kestrel keeps them (120 s),
    // not Node's 5 s: a client that reuses a connection after a pause (curl scripts,
    // a test blocked in spawnSync) must not have its POST cut by a socket closed under it.
    server.keepAliveTimeout = 120_000;
    server.headersTimeout = 125_000;
    await new Promise<void>((ok, fail) => {
      server.once('error', fail);
      server.listen(opts.port, opts.host, () => ok());
    });
    stopping.unshift(
      () =>
        new Promise<void>((done) => {
          server.close(() => done());
          server.closeAllConnections();
        }),
    );
    const port = (server.address() as AddressInfo).port;
    const base = `http://${opts.host === '0.0.0.0' ? 'localhost' : opts.host}:${port}`;
    // The URL line goes to stdout (tests and scripts read it); the rest to stderr.
    process.stdout.write(`serve: listening on ${base}\n`);
    say(
      `  POST ${base}/api/builds, GET ${base}/api/builds/{id}\n` +
        `  timers: ${timers.map((t) => `${t.name} "${t.schedule}" next ${parseNcrontab(t.schedule).next(new Date()).toISOString()}`).join('; ')}` +
        ` (fire now: POST ${base}/admin/functions/<name>)\n` +
        // The embedded Azurite's well-known dev key only: a given --storage may hold a real key.
        `  storage: ${azurite ? connection : '(from --storage)'}\n` +
        `  source: ${settings.source.kind}:${settings.source.path}`,
    );
    process.stdout.write(
      generated
        ? `serve: function key ${key} (generated; set SFT_FUNCTION_KEY to choose one)\n`
        : `serve: function key from SFT_FUNCTION_KEY\n`,
    );
    await (opts.stopped ?? untilSignal());
    say('serve: stopping (waiting for handlers in flight)');
  } finally {
    for (const stop of stopping) await stop();
    await azurite?.stop();
  }
}

/** Resolves on the first SIGINT or SIGTERM. */
function untilSignal(): Promise<void> {
  return new Promise((done) => {
    const on = () => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
      done();
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
}

/** `sft-balancer download`: a finished build's outputs from storage into DIR. */
export async function downloadById(opts: {
  buildId: string;
  out: string;
  storage: string;
  env: Record<string, string | undefined>;
}): Promise<{ state: string }> {
  const { readStatus } = await import('../functions/lib/build-ops.js');
  const { downloadBuild } = await import('./local-runner.js');
  let settings: Settings;
  try {
    settings = loadSettings({ ...opts.env, AzureWebJobsStorage: opts.storage });
  } catch (err) {
    if (err instanceof SettingsError) throw new UsageError(err.message);
    throw err;
  }
  const deps = createDeps(settings, {}, opts.env);
  const status = await readStatus(deps, opts.buildId);
  if (!status) throw new UsageError(`no build "${opts.buildId}" in this storage`);
  if (status.state !== 'succeeded' && status.state !== 'failed')
    throw new UsageError(`build ${opts.buildId} is ${status.state}: not finished yet`);
  await downloadBuild(deps, opts.buildId, opts.out, status);
  return { state: status.state };
}

const SERVE_HELP = `Usage: sft-balancer serve [--port 7071] [--host 127.0.0.1] [--storage CONN] [--source REF]

Serves the Functions app as Core Tools would: POST /api/builds and GET /api/builds/{id}
on http://HOST:PORT/api/..., the queue functions on the local queue host (host.json
semantics), and the timer on its SFT_SCHEDULE (fire it now: POST /admin/functions/scheduledBuild).
HTTP functions need the function key: header x-functions-key or query ?code=; the key is
SFT_FUNCTION_KEY, or generated and printed at start. Settings (SFT_*) come from the environment.
Stops on SIGINT/SIGTERM after the handlers in flight finish.

  --port N          port (default 7071; 0 = any free port, printed at start)
  --host H          address to listen on (default 127.0.0.1)
  --storage CONN    storage connection string (default: an embedded Azurite for this process)
  --input FILE      upload this telemetry file (as run does) and use it as the default source
  --source REF      telemetry of builds that name none (same as SFT_SOURCE):
                    file:PATH | blob:PATH | kusto:QUERY
  --verbose         log every function invocation
  -q, --quiet       only the URL and key lines`;

const DOWNLOAD_HELP = `Usage: sft-balancer download --build-id ID --out DIR --storage CONN

Downloads a finished build's outputs (train.jsonl, manifest.json, quarantine.jsonl,
report.html, ...) and its status.json into DIR, swapped in whole as for run.
CONN is the storage serve printed at start (or AzureWebJobsStorage).`;

function parseFlags(argv: string[], options: ParseArgsConfig['options']) {
  try {
    return parseArgs({
      args: argv,
      options: { help: { type: 'boolean', short: 'h' }, ...options },
      allowPositionals: false,
      strict: true,
    }).values as Record<string, string | boolean | undefined>;
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

export async function cmdServe(argv: string[]): Promise<number> {
  const v = parseFlags(argv, {
    port: { type: 'string' },
    host: { type: 'string' },
    storage: { type: 'string' },
    source: { type: 'string' },
    input: { type: 'string' },
    verbose: { type: 'boolean' },
    quiet: { type: 'boolean', short: 'q' },
  });
  if (v.help) {
    process.stdout.write(`${SERVE_HELP}\n`);
    return 0;
  }
  const port = v.port === undefined ? 7071 : Number(v.port);
  if (typeof v.input === 'string' && typeof v.source === 'string')
    throw new UsageError('give --input or --source, not both');
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new UsageError(`--port must be an integer in 0-65535, got "${String(v.port)}"`);
  await serve({
    port,
    host: typeof v.host === 'string' ? v.host : '127.0.0.1',
    ...(typeof v.storage === 'string' ? { storage: v.storage } : {}),
    ...(typeof v.input === 'string' ? { input: v.input } : {}),
    env: {
      ...process.env,
      ...(typeof v.source === 'string' ? { SFT_SOURCE: v.source } : {}),
    },
    verbose: v.verbose === true,
    quiet: v.quiet === true,
  });
  return 0;
}

export async function cmdDownload(argv: string[]): Promise<number> {
  const v = parseFlags(argv, {
    'build-id': { type: 'string' },
    out: { type: 'string' },
    storage: { type: 'string' },
  });
  if (v.help) {
    process.stdout.write(`${DOWNLOAD_HELP}\n`);
    return 0;
  }
  const buildId = required(v, 'build-id');
  const out = required(v, 'out');
  const storage =
    typeof v.storage === 'string' && v.storage !== ''
      ? v.storage
      : (process.env.AzureWebJobsStorage ?? '');
  if (storage === '') throw new UsageError('missing --storage (or AzureWebJobsStorage)');
  const { state } = await downloadById({ buildId, out, storage, env: process.env });
  process.stdout.write(`build ${buildId} (${state}) → ${out}\n`);
  return 0;
}
