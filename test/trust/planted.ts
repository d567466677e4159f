/**
 * A planted corpus: secrets and personal data of every redacted kind, each unique,
 * made from a seeded generator, and a way to mix them into generated telemetry.
 * `secret` is the part that must not survive anywhere; `text` is what is written into
 * the message (a URL keeps its host, a connection string its account name).
 */
import { Rng } from '../../shared/util/prng';
import { generateTelemetry } from '../../shared/source/generate';
import type { RedactionKind } from '../../shared/samples/redact';

export interface Planted {
  kind: RedactionKind;
  text: string;
  secret: string;
}

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const UPPER_NUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
const B64 = `${ALNUM}+/`;
const B64URL = `${ALNUM}-_`;
const HEX = '0123456789abcdef';

const b64url = (s: string) => Buffer.from(s).toString('base64url');

/** `n` items of each kind, deterministic for a seed. */
export function plantedCorpus(perKind: number, seed = 11): Planted[] {
  const rng = new Rng(seed);
  const str = (alphabet: string, n: number) => {
    let s = '';
    for (let i = 0; i < n; i++) s += alphabet[rng.int(0, alphabet.length - 1)];
    return s;
  };
  // A digit and a letter in every random token, so none is all-alpha by chance.
  const token = (alphabet: string, n: number) => `${str(alphabet, n - 2)}7q`;
  const out: Planted[] = [];
  for (let i = 0; i < perKind; i++) {
    const key88 = `${str(B64, 86)}==`;
    const sig = `${str(ALNUM, 30)}%2B${str(ALNUM, 8)}%3D`;
    const pem = str(B64, 64);
    const jwt = `${b64url('{"alg":"HS256","typ":"JWT"}')}.${b64url(`{"sub":"user-${i}-${str(ALNUM, 6)}","iat":${1_700_000_000 + i}}`)}.${str(B64URL, 43)}`;
    const user = `svc${i}${str(ALNUM, 4)}`;
    const pass = `P4ss${str(ALNUM, 10)}`;
    const awsSecret = str(B64, 40);
    const items: Planted[] = [
      {
        kind: 'PRIVATE_KEY',
        text: `-----BEGIN RSA PRIVATE KEY-----\n${pem}\n${str(B64, 32)}=\n-----END RSA PRIVATE KEY-----`,
        secret: pem,
      },
      {
        kind: 'AZURE_CONNECTION_STRING',
        text: `DefaultEndpointsProtocol=https;AccountName=acct${i};AccountKey=${key88};EndpointSuffix=core.windows.net`,
        secret: key88,
      },
      {
        kind: 'AZURE_SAS_TOKEN',
        text: `https://acct${i}.blob.core.windows.net/data/f${i}.csv?sv=2022-11-02&ss=b&sp=r&se=2026-12-01T00:00:00Z&sig=${sig}`,
        secret: sig,
      },
      {
        kind: 'SLACK_WEBHOOK',
        text: `https://hooks.slack.com/services/T0${str(UPPER_NUM, 8)}/B0${str(UPPER_NUM, 8)}/${token(ALNUM, 24)}`,
        secret: '', // filled below: the whole URL
      },
      {
        kind: 'URL_CREDENTIALS',
        text: `postgres://${user}:${pass}@db${i}.internal.example:5432/app`,
        secret: `${user}:${pass}`,
      },
      { kind: 'JWT', text: jwt, secret: jwt.split('.')[2]! },
      { kind: 'GITHUB_TOKEN', text: `ghp_${token(ALNUM, 36)}`, secret: '' },
      { kind: 'ANTHROPIC_API_KEY', text: `sk-ant-api03-${token(B64URL, 40)}`, secret: '' },
      { kind: 'OPENAI_API_KEY', text: `sk-proj-${token(ALNUM, 40)}`, secret: '' },
      { kind: 'AWS_ACCESS_KEY', text: `AKIA${str(UPPER_NUM, 14)}7Q`, secret: '' },
      {
        kind: 'AWS_SECRET_KEY',
        text: `aws_secret_access_key = ${awsSecret}`,
        secret: awsSecret,
      },
      {
        kind: 'SLACK_TOKEN',
        text: `xoxb-${str('0123456789', 12)}-${str('0123456789', 13)}-${token(ALNUM, 24)}`,
        secret: '',
      },
      { kind: 'GOOGLE_API_KEY', text: `AIza${token(B64URL, 35)}`, secret: '' },
      { kind: 'GOOGLE_OAUTH_TOKEN', text: `ya29.${token(B64URL, 60)}`, secret: '' },
      { kind: 'AZURE_STORAGE_KEY', text: `${str(B64, 86)}==`, secret: '' },
      {
        kind: 'EMAIL',
        text: `${['ana', 'bo', 'chen', 'dev'][i % 4]}.${str('abcdefghij', 5)}${i}@corp${i}.example.com`,
        secret: '',
      },
      {
        kind: 'IP_ADDRESS',
        text:
          i % 2 === 0
            ? `${rng.int(11, 126)}.${rng.int(0, 255)}.${rng.int(0, 255)}.${rng.int(1, 254)}`
            : `2001:db8:${str(HEX, 4)}::${str(HEX, 3)}${i % 10}`,
        secret: '',
      },
      {
        kind: 'PHONE',
        text:
          i % 2 === 0
            ? `+44 20 7946 ${String(rng.int(1000, 9999))}`
            : `(415) 555-${String(rng.int(1000, 9999))}`,
        secret: '',
      },
    ];
    for (const it of items) if (it.secret === '') it.secret = it.text;
    out.push(...items);
  }
  return out;
}

/**
 * Generated telemetry with the corpus mixed into user messages (one or two items in a
 * message, spread over the turns by a seeded choice) and `badLines` malformed lines
 * that carry one item each (to prove quarantined raw text is redacted too).
 */
export function plantedTelemetry(opts: {
  conversations: number;
  corpus: Planted[];
  seed?: number;
  inBadLines?: number;
}): { lines: string[]; planted: Planted[] } {
  const rng = new Rng((opts.seed ?? 5) + 1);
  const turns = [...generateTelemetry({ conversations: opts.conversations, seed: opts.seed ?? 5 })];
  const bad = opts.corpus.slice(0, opts.inBadLines ?? 0);
  const good = opts.corpus.slice(bad.length);
  for (const item of good) {
    const t = turns[rng.int(0, turns.length - 1)]!;
    t.userMessage = `${t.userMessage}\nsee ${item.text} there`;
  }
  const lines = turns.map((t) => JSON.stringify(t));
  for (const [i, item] of bad.entries())
    lines.push(
      `{"conversationId":"broken-${i}","userMessage":${JSON.stringify(`key ${item.text}`)}`,
    );
  return { lines, planted: opts.corpus };
}

/** Counts by kind, sorted, as the manifest has them. */
export function countsOf(items: readonly Planted[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const it of items) out[it.kind] = (out[it.kind] ?? 0) + 1;
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => (a < b ? -1 : 1)));
}
