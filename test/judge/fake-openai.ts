/**
 * A local HTTP server that speaks enough of the OpenAI wire protocol (Chat
 * Completions, Files, Batches; OpenAI `/v1/...` and Azure `/openai/...` paths) for
 * the real `openai` SDK to drive it. Tests script its answers and read back every
 * request it received.
 */
/* eslint-disable @typescript-eslint/no-explicit-any -- the fake handles arbitrary client JSON */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Recorded {
  method: string;
  /** Path without the query, e.g. /v1/chat/completions or /openai/deployments/d/chat/completions. */
  path: string;
  query: URLSearchParams;
  headers: IncomingMessage['headers'];
  body: any;
  at: number;
}

export interface Reply {
  status?: number;
  headers?: Record<string, string>;
  json?: unknown;
  /** Raw body text instead of json. */
  raw?: string;
  /** Wait before answering (to trigger client timeouts). */
  delayMs?: number;
}

export interface ChatBody {
  model: string;
  messages: { role: string; content: string }[];
  logprobs?: boolean;
  [k: string]: unknown;
}

/** Answers one chat request; `n` counts chat requests from 1. */
export type ChatResponder = (body: ChatBody, n: number, req: Recorded) => Reply | Promise<Reply>;

export interface SampleSeen {
  id: string;
  message: string;
  history?: string[];
}

/** The samples of a judge request: the JSON lines between the two delimiter lines. */
export function samplesOf(body: ChatBody): { delimiter: string; samples: SampleSeen[] } {
  const user = body.messages.find((m) => m.role === 'user')!.content;
  const lines = user.split('\n');
  const first = lines.findIndex((l) => /^<<<SAMPLES [0-9a-f]{16,}>>>$/.test(l));
  const last = lines.lastIndexOf(lines[first]!);
  if (first < 0 || last <= first) throw new Error('no delimited data block in the user message');
  return {
    delimiter: lines[first]!,
    samples: lines.slice(first + 1, last).map((l) => JSON.parse(l) as SampleSeen),
  };
}

/** The default oracle: "reasoning" (0) when the message has a reasoning cue word. */
export function oracleLabel(message: string): 0 | 1 {
  return /\b(design|why|deadlock|race|architect|migrat|optimi[sz]e|refactor)/i.test(message)
    ? 0
    : 1;
}

/** Splits JSON text into tokens so that each label digit is a token of its own. */
export function tokenize(text: string): string[] {
  return text.match(/"[^"]*"|\d|[^"\d]+/g) ?? [];
}

/** A chat.completion with usage and (when asked) logprobs for `content`. */
export function completion(
  body: ChatBody,
  content: string,
  opts: { labelProbability?: number; cachedTokens?: number } = {},
): Reply {
  const p = opts.labelProbability ?? 0.9;
  const promptChars = body.messages.reduce((n, m) => n + m.content.length, 0);
  const tokens = tokenize(content);
  const logprobs = body.logprobs
    ? {
        content: tokens.map((t) => {
          const digit = /^\d$/.test(t);
          return {
            token: t,
            logprob: digit ? Math.log(p) : 0,
            bytes: null,
            top_logprobs: digit
              ? [
                  { token: t, logprob: Math.log(p), bytes: null },
                  { token: t === '0' ? '1' : '0', logprob: Math.log(1 - p), bytes: null },
                ]
              : [],
          };
        }),
        refusal: null,
      }
    : null;
  return {
    json: {
      id: `chatcmpl-${Math.random().toString(36).slice(2)}`,
      object: 'chat.completion',
      created: 1_700_000_000,
      model: body.model,
      choices: [
        {
          index: 0,
          message: { role: 'assistant', content, refusal: null },
          logprobs,
          finish_reason: 'stop',
        },
      ],
      usage: {
        prompt_tokens: Math.ceil(promptChars / 4),
        completion_tokens: tokens.length,
        total_tokens: Math.ceil(promptChars / 4) + tokens.length,
        prompt_tokens_details: { cached_tokens: opts.cachedTokens ?? 0 },
      },
    },
  };
}

/** Verdicts for every sample of the request, labelled by `label` (default: the oracle). */
export function verdictJson(
  body: ChatBody,
  label: (s: SampleSeen) => unknown = (s) => oracleLabel(s.message),
): { verdicts: { id: string; label: unknown; rationale: string }[] } {
  return {
    verdicts: samplesOf(body).samples.map((s) => ({
      id: s.id,
      label: label(s),
      rationale: 'oracle',
    })),
  };
}

/** The default responder: correct verdicts for every sample. */
export const oracle: ChatResponder = (body) => completion(body, JSON.stringify(verdictJson(body)));

export interface FakeOpenAI {
  /** http://127.0.0.1:PORT */
  url: string;
  requests: Recorded[];
  /** Chat requests only (direct calls, not batch lines). */
  chats(): Recorded[];
  chat: ChatResponder;
  /** Batch lines: return an HTTP status to fail a line in a given batch round (1-based). */
  batchLine: (customId: string, batchNumber: number) => number;
  files: Map<string, { filename: string; purpose: string; text: string }>;
  deletedFiles: string[];
  batchesCreated: number;
  /** When set, GET /batches/:id answers with this HTTP status (a polling failure). */
  failRetrieve: number | null;
  close(): Promise<void>;
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** The parts of a multipart/form-data body, by field name. */
function multipart(
  buf: Buffer,
  contentType: string,
): Map<string, { filename?: string; text: string }> {
  const boundary = /boundary=(?:"([^"]+)"|([^;]+))/.exec(contentType);
  const b = `--${boundary?.[1] ?? boundary?.[2]}`;
  const out = new Map<string, { filename?: string; text: string }>();
  for (const part of buf.toString('utf8').split(b)) {
    const sep = part.indexOf('\r\n\r\n');
    if (sep < 0) continue;
    const head = part.slice(0, sep);
    const name = /name="([^"]+)"/.exec(head)?.[1];
    if (!name) continue;
    const filename = /filename="([^"]*)"/.exec(head)?.[1];
    const text = part.slice(sep + 4).replace(/\r\n$/, '');
    out.set(name, filename !== undefined ? { filename, text } : { text });
  }
  return out;
}

export async function startFakeOpenAI(chat: ChatResponder = oracle): Promise<FakeOpenAI> {
  const requests: Recorded[] = [];
  const files = new Map<string, { filename: string; purpose: string; text: string }>();
  const batches = new Map<string, any>();
  let chatCount = 0;
  let fileSeq = 0;
  let batchSeq = 0;

  const send = async (res: ServerResponse, reply: Reply) => {
    if (reply.delayMs) await new Promise((r) => setTimeout(r, reply.delayMs));
    if (res.destroyed) return;
    const text = reply.raw ?? JSON.stringify(reply.json ?? {});
    res.writeHead(reply.status ?? 200, {
      'content-type': reply.raw !== undefined ? 'text/plain' : 'application/json',
      ...reply.headers,
    });
    res.end(text);
  };

  const fake: FakeOpenAI = {
    url: '',
    requests,
    chats: () => requests.filter((r) => r.path.endsWith('/chat/completions')),
    chat,
    batchLine: () => 200,
    files,
    deletedFiles: [],
    batchesCreated: 0,
    failRetrieve: null,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };

  const runBatch = async (batch: any) => {
    const input = files.get(batch.input_file_id)!.text;
    const ok: string[] = [];
    const bad: string[] = [];
    for (const line of input.split('\n')) {
      if (!line.trim()) continue;
      const l = JSON.parse(line);
      const status = fake.batchLine(l.custom_id, batch.number);
      if (status !== 200) {
        bad.push(
          JSON.stringify({
            id: `batch_req_${l.custom_id}`,
            custom_id: l.custom_id,
            response: { status_code: status, body: { error: { message: `injected ${status}` } } },
            error: null,
          }),
        );
        continue;
      }
      chatCount++;
      const reply = await fake.chat(l.body, chatCount, {
        method: 'POST',
        path: l.url,
        query: new URLSearchParams(),
        headers: {},
        body: l.body,
        at: Date.now(),
      });
      ok.push(
        JSON.stringify({
          id: `batch_req_${l.custom_id}`,
          custom_id: l.custom_id,
          response: { status_code: reply.status ?? 200, body: reply.json },
          error: null,
        }),
      );
    }
    const put = (lines: string[], name: string) => {
      if (lines.length === 0) return null;
      const id = `file-${++fileSeq}`;
      files.set(id, { filename: name, purpose: 'batch_output', text: lines.join('\n') + '\n' });
      return id;
    };
    batch.output_file_id = put(ok, 'output.jsonl');
    batch.error_file_id = put(bad, 'errors.jsonl');
    batch.status = 'completed';
    batch.request_counts = {
      total: ok.length + bad.length,
      completed: ok.length,
      failed: bad.length,
    };
  };

  const server = createServer((req, res) => {
    void (async () => {
      const raw = await readBody(req);
      const u = new URL(req.url ?? '/', 'http://x');
      const ct = req.headers['content-type'] ?? '';
      let body: any = null;
      if (ct.includes('application/json') && raw.length) body = JSON.parse(raw.toString('utf8'));
      else if (ct.includes('multipart/form-data')) body = multipart(raw, ct);
      const rec: Recorded = {
        method: req.method ?? 'GET',
        path: u.pathname,
        query: u.searchParams,
        headers: req.headers,
        body,
        at: Date.now(),
      };
      requests.push(rec);
      const p = u.pathname.replace(/^\/(v1|openai)/, '');
      if (req.method === 'POST' && p.endsWith('/chat/completions')) {
        chatCount++;
        return send(res, await fake.chat(body as ChatBody, chatCount, rec));
      }
      if (req.method === 'POST' && p === '/files') {
        const parts = body as Map<string, { filename?: string; text: string }>;
        const id = `file-${++fileSeq}`;
        const f = parts.get('file')!;
        files.set(id, {
          filename: f.filename ?? 'upload',
          purpose: parts.get('purpose')?.text ?? '',
          text: f.text,
        });
        return send(res, {
          json: {
            id,
            object: 'file',
            bytes: f.text.length,
            created_at: 1,
            filename: f.filename,
            purpose: 'batch',
            status: 'processed',
          },
        });
      }
      let m = /^\/files\/([^/]+)\/content$/.exec(p);
      if (m && req.method === 'GET') {
        const f = files.get(m[1]!);
        return send(
          res,
          f ? { raw: f.text } : { status: 404, json: { error: { message: 'no such file' } } },
        );
      }
      m = /^\/files\/([^/]+)$/.exec(p);
      if (m && req.method === 'DELETE') {
        fake.deletedFiles.push(m[1]!);
        files.delete(m[1]!);
        return send(res, { json: { id: m[1], object: 'file', deleted: true } });
      }
      if (req.method === 'POST' && p === '/batches') {
        const id = `batch_${++batchSeq}`;
        fake.batchesCreated++;
        const batch = {
          id,
          object: 'batch',
          endpoint: body.endpoint,
          input_file_id: body.input_file_id,
          completion_window: body.completion_window,
          status: 'validating',
          created_at: 1,
          number: batchSeq,
          output_file_id: null,
          error_file_id: null,
        };
        batches.set(id, batch);
        return send(res, { json: batch });
      }
      m = /^\/batches\/([^/]+)$/.exec(p);
      if (m && req.method === 'GET') {
        if (fake.failRetrieve !== null)
          return send(res, { status: fake.failRetrieve, json: { error: { message: 'injected' } } });
        const batch = batches.get(m[1]!);
        if (!batch)
          return send(res, { status: 404, json: { error: { message: 'no such batch' } } });
        if (batch.status === 'validating') batch.status = 'in_progress';
        else if (batch.status === 'in_progress') await runBatch(batch);
        return send(res, { json: batch });
      }
      return send(res, {
        status: 404,
        json: { error: { message: `no route ${req.method} ${u.pathname}` } },
      });
    })().catch((err: unknown) => {
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { message: String(err) } }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  fake.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return fake;
}
