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
  /**
   * Where it goes in a turn: the user message (default), a metadata KEY (`{ "<text>": 1 }`
   * in a nested extra field), or the value of a metadata field named as a secret
   * (`{ "db_password": "<text>" }`).
   */
  place?: 'message' | 'key' | 'field';
  /** Planted first in malformed lines (escaped quotes in the quarantined raw text). */
  malformed?: boolean;
}

/** Puts an item into a turn where its `place` says (the message gets `see … there`). */
export function plant(turn: { userMessage: string }, item: Planted): void {
  const row = turn as unknown as Record<string, unknown>;
  if (item.place === 'key' || item.place === 'field') {
    const ctx = (row.context ??= { entries: [] }) as { entries: unknown[] };
    ctx.entries.push(
      item.place === 'key' ? { [item.text]: { seen: 1 } } : { db_password: item.text },
    );
    return;
  }
  turn.userMessage = `${turn.userMessage}\nsee ${item.text} there`;
}

/** A Luhn-valid card number of `len` digits starting with `prefix`. */
function cardNumber(prefix: string, len: number, digit: () => number): string {
  let d = prefix;
  while (d.length < len - 1) d += String(digit());
  let sum = 0;
  for (let i = 0; i < d.length; i++) {
    let x = Number(d[d.length - 1 - i]);
    if (i % 2 === 0) x = x * 2 > 9 ? x * 2 - 9 : x * 2;
    sum += x;
  }
  return d + String((10 - (sum % 10)) % 10);
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
    // The forms that escaped before (issue 13): keys, word boundaries, URL encoding,
    // escaped quotes, Unicode local parts, mapped IPv6, an empty URL user; and the
    // kinds added with them (cards, passwords, bearer tokens).
    const gh = () => `ghp_${token(ALNUM, 36)}`;
    const ghBackup = gh();
    const ghEncoded = gh();
    const sasSig = str(ALNUM, 42);
    const awsQuoted = `${str(B64, 38)}7q`;
    const octets = [rng.int(0, 255), rng.int(0, 255), rng.int(1, 254)];
    const pw = () => `Pw${str(ALNUM, 12)}9!`;
    const [pw1, pw2, pw3, pw4, pw5, pw6] = [pw(), pw(), pw(), pw(), pw(), pw()];
    const bearer = token(B64URL, 40);
    const basic = Buffer.from(`user${i}:${pw()}`).toString('base64');
    const visa = cardNumber('4', 16, () => rng.int(0, 9));
    const amex = cardNumber(i % 2 === 0 ? '34' : '37', 15, () => rng.int(0, 9));
    const mastercard = cardNumber('5' + String(rng.int(1, 5)), 16, () => rng.int(0, 9));
    const local = `ana${i}.${str('abcdefghij', 4)}`;
    items.push(
      { kind: 'EMAIL', text: `${local}.k@keys${i}.example.org`, secret: '', place: 'key' },
      { kind: 'GITHUB_TOKEN', text: gh(), secret: '', place: 'key' },
      { kind: 'GITHUB_TOKEN', text: `${ghBackup}_backup`, secret: ghBackup },
      {
        kind: 'GITHUB_TOKEN',
        text: `https://ci.example/hook?q=token%3D${ghEncoded}`,
        secret: ghEncoded,
      },
      {
        kind: 'EMAIL',
        text: `https://app.example/invite?to=${local}%40corp${i}.example.com&x=1`,
        secret: `${local}%40corp${i}`,
      },
      {
        kind: 'AZURE_SAS_TOKEN',
        text: `https://app.example/cb?next=https%3A%2F%2Facct${i}.blob.core.windows.net%2Fc%2Ff.csv%3Fsv%3D2022-11-02%26sp%3Dr%26sig%3D${sasSig}`,
        secret: sasSig,
      },
      {
        kind: 'AWS_SECRET_KEY',
        text: `aws_secret_access_key="${awsQuoted}"`,
        secret: awsQuoted,
        malformed: true,
      },
      {
        kind: 'PASSWORD',
        text: `config {"user": "svc", "password": "${pw1}"}`,
        secret: pw1,
        malformed: true,
      },
      {
        kind: 'EMAIL',
        text: `jos\u00e9${i}.garc\u00eda@empresa${i}.example.es`,
        secret: `jos\u00e9${i}.garc\u00ed`,
      },
      {
        kind: 'IP_ADDRESS',
        text: `::ffff:192.${octets.join('.')}`,
        secret: `.${octets.join('.')}`,
      },
      { kind: 'URL_CREDENTIALS', text: `redis://:${pw2}@redis${i}:6379/0`, secret: pw2 },
      { kind: 'CARD_NUMBER', text: visa.replace(/(\d{4})(?=\d)/g, '$1 '), secret: '' },
      { kind: 'CARD_NUMBER', text: mastercard, secret: '' },
      {
        kind: 'CARD_NUMBER',
        text: `${amex.slice(0, 4)}-${amex.slice(4, 10)}-${amex.slice(10)}`,
        secret: '',
      },
      { kind: 'PASSWORD', text: `password=${pw3}`, secret: pw3 },
      { kind: 'PASSWORD', text: `export DB_PASSWORD='${pw4}'`, secret: pw4 },
      { kind: 'PASSWORD', text: pw5, secret: pw5, place: 'field' },
      {
        kind: 'PRIVATE_KEY',
        text: `-----BEGIN OPENSSH PRIVATE KEY-----\n${pw6}${str(B64, 50)}\n-----END OPENSSH PRIVATE KEY-----`,
        secret: pw6,
      },
      { kind: 'BEARER_TOKEN', text: `curl -H "Authorization: Bearer ${bearer}"`, secret: bearer },
      { kind: 'BEARER_TOKEN', text: `Authorization: Basic ${basic}`, secret: basic },
    );
    for (const it of items) if (it.secret === '') it.secret = it.text;
    // A secret is looked for in JSON text: it must not hold what JSON escapes.
    for (const it of items)
      if (JSON.stringify(it.secret) !== `"${it.secret}"`) throw new Error(`bad secret: ${it.text}`);
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
  // Malformed lines take the items planted for them first, then others (message items only).
  const inMessage = opts.corpus.filter((p) => (p.place ?? 'message') === 'message');
  const bad = [
    ...inMessage.filter((p) => p.malformed),
    ...inMessage.filter((p) => !p.malformed),
  ].slice(0, opts.inBadLines ?? 0);
  const inBad = new Set(bad);
  const good = opts.corpus.filter((p) => !inBad.has(p));
  for (const item of good) plant(turns[rng.int(0, turns.length - 1)]!, item);
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
