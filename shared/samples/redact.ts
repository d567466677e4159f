/**
 * Redaction of secrets and personal data in telemetry text, before a message leaves
 * the source step (before the judge sees it and before any result is written).
 * Each find is replaced by a typed placeholder such as `[EMAIL]` or
 * `[AWS_ACCESS_KEY]` and counted by kind, so the manifest can say what was removed.
 *
 * A pure pattern set. The maintained detector libraries on npm did not fit: the
 * current secretlint (13.x) and @arcjet/redact require Node >= 22; secretlint's
 * Node 20 line is ESM-only, asynchronous and file-oriented and finds no e-mail,
 * phone or IP address; redact-pii calls Google Cloud DLP (a network service). The
 * provider patterns follow the published token formats (the same ones gitleaks and
 * secretlint use). Every pattern is linear-time (no nested unbounded repetition), so
 * a hostile 32 kB message cannot stall a batch; the tests time the worst cases.
 */
import type { TelemetryTurn } from '../contracts/rows';
import { TURN_FIELDS } from '../contracts/rows';

/** Kinds in the order they are applied: specific before general. */
export const REDACTION_KINDS = [
  'PRIVATE_KEY',
  'AZURE_CONNECTION_STRING',
  'AZURE_SAS_TOKEN',
  'SLACK_WEBHOOK',
  'URL_CREDENTIALS',
  'JWT',
  'GITHUB_TOKEN',
  'ANTHROPIC_API_KEY',
  'OPENAI_API_KEY',
  'AWS_ACCESS_KEY',
  'AWS_SECRET_KEY',
  'SLACK_TOKEN',
  'GOOGLE_API_KEY',
  'GOOGLE_OAUTH_TOKEN',
  'AZURE_STORAGE_KEY',
  'BEARER_TOKEN',
  'PASSWORD',
  'CARD_NUMBER',
  'EMAIL',
  'IP_ADDRESS',
  'PHONE',
] as const;
export type RedactionKind = (typeof REDACTION_KINDS)[number];
export type RedactionCounts = Partial<Record<RedactionKind, number>>;

interface Rule {
  kind: RedactionKind;
  re: RegExp;
  /** Replacement of one match: the placeholder in place of the secret part only. */
  replace?: (match: string, ...groups: string[]) => string;
  /** A candidate that fails this check is left as it is. */
  accept?: (match: string) => boolean;
  /**
   * A cheap test a text must pass for the rule to run at all (a substring every match
   * holds): most texts hold no secret, and `includes` is far cheaper than the pattern.
   */
  pre?: (text: string) => boolean;
}

const has =
  (...parts: string[]) =>
  (t: string) =>
    parts.some((p) => t.includes(p));
const PASSWORD_PRE = /pass|pwd|secret|key|token/i;
const BEARER_PRE = /bearer|authorization/i;

const ph = (kind: RedactionKind) => `[${kind}]`;

const isIpv4Octets = (s: string) =>
  s.split('.').every((o) => o.length > 0 && Number(o) <= 255 && (o === '0' || o[0] !== '0'));

/** Loopback and the unspecified address are not anyone's address: kept, they help training. */
const PUBLIC_IPV4 = (s: string) => isIpv4Octets(s) && s !== '0.0.0.0' && !s.startsWith('127.');

const IPV6_OK = (s: string) => {
  const groups = s.split(':').filter((g) => g.length > 0);
  if (s === '::1' || s === '::') return false;
  // `a::b` is C++ scope syntax; a real address has digits and at least two groups.
  return groups.length >= 2 && /\d/.test(s) && (s.includes('::') || groups.length === 8);
};

/** The IPv4 part of an IPv4-mapped/embedded IPv6 address (`::ffff:192.0.2.1`). */
const MIXED_IPV6_OK = (s: string) => PUBLIC_IPV4(s.slice(s.lastIndexOf(':') + 1));

/** Luhn checksum over the digits of `s`. */
const luhn = (digits: string) => {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = digits.charCodeAt(digits.length - 1 - i) - 48;
    if (i % 2 === 1) d = d * 2 > 9 ? d * 2 - 9 : d * 2;
    sum += d;
  }
  return sum % 10 === 0;
};

/**
 * A payment card number: 13 to 19 digits, a card network's first digit (2-6), the
 * Luhn checksum, and either no separators or the printed grouping (4-4-4-4[-3],
 * 4-6-5, 4-6-4) with one separator kind. Random digit runs, ids and phone numbers
 * mostly fail one of these.
 */
const CARD_OK = (s: string) => {
  const digits = s.replace(/\D/g, '');
  if (digits.length < 13 || digits.length > 19 || !/^[2-6]/.test(digits)) return false;
  if (!luhn(digits)) return false;
  if (digits.length === s.length) return true;
  const seps = new Set(s.replace(/\d/g, ''));
  if (seps.size !== 1) return false;
  const groups = s
    .split(/[ -]/)
    .map((g) => g.length)
    .join('-');
  return /^(?:4-4-4-4(?:-[1-3])?|4-4-4-1|4-6-[45])$/.test(groups);
};

/**
 * Names under which a value is a secret whatever it looks like (`password=…`,
 * `"client_secret": "…"`, a metadata field `apiKey`): compared lower-case without
 * `-`, `_`, `.` and spaces, on the end of the name (`db_password`, `X-Api-Key`).
 */
const SECRET_NAME_ENDS = [
  'password',
  'passwd',
  'passphrase',
  'secret',
  'apikey',
  'accesstoken',
  'authtoken',
  'refreshtoken',
  'sessiontoken',
  'bearertoken',
  'apitoken',
  'idtoken',
  'csrftoken',
  'privatekey',
  'secretkey',
  'accountkey',
];
const SECRET_NAME_EXACT = new Set(['pwd', 'pass', 'token', 'auth', 'authorization']);

/** Whether a metadata key names a secret value (its string value is redacted whole). */
export function isSecretName(key: string): boolean {
  if (key.length > 80) return false;
  const k = key.toLowerCase().replace(/[-_.\s]/g, '');
  return SECRET_NAME_EXACT.has(k) || SECRET_NAME_ENDS.some((e) => k.endsWith(e));
}

/** The names the text rules know (`key=value`, `"key": "value"`), as a regex source. */
const SECRET_KEYS =
  'pass(?:word|wd|phrase)?|pwd|secret|client[_.-]?secret|api[_.-]?key|(?:access|auth|refresh|session|id|api)[_.-]?token|token|private[_.-]?key|secret[_.-]?key|account[_.-]?key';

const phoneDigits = (s: string) => {
  const n = s.replace(/\D/g, '').length;
  return n >= 10 && n <= 15;
};

const RULES: Rule[] = [
  {
    kind: 'PRIVATE_KEY',
    pre: has('PRIVATE KEY'),
    // Through its END line, or to the end of the text when it was cut off.
    re: /-----BEGIN[ A-Z0-9]{0,40}PRIVATE KEY(?: BLOCK)?-----[\s\S]*?(?:-----END[ A-Z0-9]{0,40}PRIVATE KEY(?: BLOCK)?-----|$)/g,
  },
  {
    kind: 'AZURE_CONNECTION_STRING',
    pre: has('AccountKey=', 'SharedAccess'),
    // Storage / Service Bus / Event Hubs: the settings around a key or signature.
    re: /(?:\b(?:DefaultEndpointsProtocol|AccountName|Endpoint|BlobEndpoint|QueueEndpoint|TableEndpoint|FileEndpoint|SharedAccessKeyName)=[^;\s"'<>]{0,300};\s?){0,8}\b(?:AccountKey|SharedAccessKey|SharedAccessSignature)=[^;\s"'<>]{1,500}(?:;\s?(?:EndpointSuffix|EntityPath|BlobEndpoint|QueueEndpoint|TableEndpoint|FileEndpoint)=[^;\s"'<>]{0,300}){0,6};?/g,
  },
  {
    kind: 'AZURE_SAS_TOKEN',
    pre: has('sig='),
    // A query string that carries a signature (`sig=`), with its sibling parameters.
    re: /(?:\b(?:sv|ss|srt|sp|se|st|spr|sr|si|sdd|skoid|sktid|skt|ske|sks|skv|rscc|rscd|rsce|rscl|rsct)=[^&\s"'<>#]{0,200}&){0,20}\bsig=[A-Za-z0-9%+/]{16,200}={0,2}(?:&(?:sv|ss|srt|sp|se|st|spr|sr|si|sdd|skoid|sktid|skt|ske|sks|skv|rscc|rscd|rsce|rscl|rsct)=[^&\s"'<>#]{0,200}){0,20}/g,
  },
  {
    kind: 'SLACK_WEBHOOK',
    pre: has('hooks.slack.com'),
    re: /https:\/\/hooks\.slack\.com\/(?:services|workflows|triggers)\/[A-Za-z0-9_/-]{20,200}/g,
  },
  {
    kind: 'URL_CREDENTIALS',
    pre: has('://'),
    // scheme://user:password@host keeps the scheme and host; the user may be empty
    // (`redis://:password@host`).
    re: /\b([a-z][a-z0-9+.-]{0,20}:\/\/)[^\s/:@"'<>]{0,200}:[^\s/@"'<>]{1,200}@/gi,
    replace: (_m, scheme) => `${scheme}${ph('URL_CREDENTIALS')}@`,
  },
  {
    kind: 'JWT',
    pre: has('eyJ'),
    re: /\beyJ[A-Za-z0-9_-]{5,4000}\.eyJ[A-Za-z0-9_-]{2,8000}\.[A-Za-z0-9_-]{0,2000}/g,
  },
  {
    // Vendor prefixes are distinctive: no word boundary is asked before them or after
    // them (`ghp_…_backup`, `token=ghp_…` or `x-ghp_…` are found).
    kind: 'GITHUB_TOKEN',
    pre: has('gh', 'github_pat_'),
    re: /(?:gh[pousr]_[A-Za-z0-9]{36,251}|github_pat_[A-Za-z0-9_]{22,255})(?![A-Za-z0-9])/g,
  },
  { kind: 'ANTHROPIC_API_KEY', pre: has('sk-ant-'), re: /sk-ant-[A-Za-z0-9_-]{20,300}/g },
  {
    kind: 'OPENAI_API_KEY',
    pre: has('sk-'),
    // sk-..., sk-proj-..., sk-svcacct-...; a digit somewhere keeps "sk-learn-style-names" out.
    re: /(?<![A-Za-z0-9])sk-(?=[A-Za-z0-9_-]{0,300}\d)[A-Za-z0-9_-]{20,300}/g,
  },
  {
    kind: 'AWS_ACCESS_KEY',
    pre: has('AKIA', 'ASIA', 'ABIA', 'ACCA', 'A3T'),
    re: /(?<![A-Z0-9])(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16}(?![A-Z0-9])/g,
  },
  {
    kind: 'AWS_SECRET_KEY',
    pre: (t) => /secret/i.test(t),
    // 40 base64 characters are only a secret in context: after its usual names.
    // Quotes may come escaped (`=\\"…\\"` in the raw text of a malformed JSON line).
    re: /(aws_?secret(?:_?access)?_?key\\{0,3}["']?\s{0,5}[:=]\s{0,5}\\{0,3}["']?)[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+])/gi,
    replace: (_m, lead) => `${lead}${ph('AWS_SECRET_KEY')}`,
  },
  { kind: 'SLACK_TOKEN', pre: has('xox'), re: /xox[abposr]-[A-Za-z0-9-]{10,250}/g },
  { kind: 'GOOGLE_API_KEY', pre: has('AIza'), re: /AIza[0-9A-Za-z_-]{35}(?![0-9A-Za-z-])/g },
  { kind: 'GOOGLE_OAUTH_TOKEN', pre: has('ya29.'), re: /ya29\.[0-9A-Za-z_-]{20,2000}/g },
  {
    kind: 'AZURE_STORAGE_KEY',
    pre: has('=='),
    // A bare account key: 64 random bytes in base64 (88 characters ending in ==).
    re: /(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{86}==(?![A-Za-z0-9+/=])/g,
  },
  {
    kind: 'BEARER_TOKEN',
    pre: (t) => BEARER_PRE.test(t),
    // `Authorization: Bearer|Basic|Token|Bot …` (header dumps, curl lines).
    re: /(\bauthorization\\{0,3}["']?\s{0,5}[:=]\s{0,5}\\{0,3}["']?\s{0,5}(?:bearer|basic|token|bot)\s{1,5})[A-Za-z0-9._~+/-]{8,4000}={0,2}/gi,
    replace: (_m, lead) => `${lead}${ph('BEARER_TOKEN')}`,
  },
  {
    kind: 'BEARER_TOKEN',
    pre: (t) => BEARER_PRE.test(t),
    // A bare `Bearer …`: the credential must hold a digit, so "bearer authentication" stays.
    re: /(\bbearer\s{1,5})(?=[A-Za-z._~+/=-]{0,400}\d)[A-Za-z0-9._~+/-]{12,4000}={0,2}/gi,
    replace: (_m, lead) => `${lead}${ph('BEARER_TOKEN')}`,
  },
  {
    kind: 'PASSWORD',
    pre: (t) => PASSWORD_PRE.test(t),
    // key=value under a secret's name (`password=…`, `DB_PASSWORD="…"`, `token=…`).
    re: new RegExp(
      `((?<![A-Za-z0-9])(?:[A-Za-z0-9]{1,30}[_.-])?(?:${SECRET_KEYS})\\\\{0,3}["']?\\s{0,3}=\\s{0,3}\\\\{0,3}["']?)(?!\\[[A-Z_]{2,30}\\])(?!(?:true|false|null|none)(?![^\\s"'\\\\,;&<>]))[^\\s"'\\\\,;&<>]{1,200}`,
      'gi',
    ),
    replace: (_m, lead) => `${lead}${ph('PASSWORD')}`,
  },
  {
    kind: 'PASSWORD',
    pre: (t) => PASSWORD_PRE.test(t),
    // key: value, for a quoted secret name (`"password": "…"`, JSON or YAML) or an
    // unquoted password name (`password: …`).
    re: new RegExp(
      `((?<![A-Za-z0-9])(?:[A-Za-z0-9]{1,30}[_.-])?(?:(?:${SECRET_KEYS})\\\\{0,3}["']|(?:pass(?:word|wd|phrase)?|pwd))\\s{0,3}:\\s{0,3}\\\\{0,3}["']?)(?!\\[[A-Z_]{2,30}\\])(?!(?:true|false|null|none)(?![^\\s"'\\\\,;&<>]))[^\\s"'\\\\,;&<>]{1,200}`,
      'gi',
    ),
    replace: (_m, lead) => `${lead}${ph('PASSWORD')}`,
  },
  {
    kind: 'CARD_NUMBER',
    re: /(?<![0-9A-Za-z.+-])\d(?:[ -]?\d){12,18}(?![0-9A-Za-z]|[.-]\d)/g,
    accept: CARD_OK,
  },
  {
    kind: 'EMAIL',
    pre: has('@'),
    // Unicode letters in the local part and the domain (`josé.garcía@exämple.com`).
    re: /(?<![\p{L}\p{N}._%+-])[\p{L}\p{N}._%+-]{1,64}@[\p{L}\p{N}](?:[\p{L}\p{N}-]{0,62}[\p{L}\p{N}])?(?:\.[\p{L}\p{N}](?:[\p{L}\p{N}-]{0,62}[\p{L}\p{N}])?){0,8}\.\p{L}{2,24}(?![\p{L}\p{N}_])/gu,
  },
  {
    kind: 'IP_ADDRESS',
    // IPv4-mapped / embedded IPv6 (`::ffff:192.0.2.1`, `64:ff9b::203.0.113.9`) as one
    // find, before the IPv6 rule could take `::ffff:192` and leave `.0.2.1`.
    pre: (t) => t.includes(':') && t.includes('.'),
    re: /(?<![0-9A-Za-z:.])(?:[0-9A-Fa-f]{0,4}:){2,7}\d{1,3}(?:\.\d{1,3}){3}(?![0-9A-Za-z]|\.\d)/g,
    accept: MIXED_IPV6_OK,
  },
  {
    kind: 'IP_ADDRESS',
    // IPv6 (full or compressed) and IPv4, not inside a longer dotted number (versions).
    re: /(?<![0-9A-Za-z:.])(?:(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}|(?:[0-9A-Fa-f]{1,4}:){1,7}:(?:[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){0,6})?|::(?:[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){0,6}))(?![0-9A-Za-z:]|\.\d)|(?<![0-9A-Za-z.])\d{1,3}(?:\.\d{1,3}){3}(?![0-9A-Za-z]|\.\d)/g,
    accept: (m) => (m.includes(':') ? IPV6_OK(m) : PUBLIC_IPV4(m)),
  },
  {
    kind: 'PHONE',
    // +CC and 7-14 more digits in groups, or the North American (NNN) NNN-NNNN.
    re: /(?<![\w+])(?:\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]?\d{2,4}){1,4}|\(\d{3}\)[ .-]?\d{3}[ .-]\d{4}|\d{3}[.-]\d{3}[.-]\d{4})(?![\w])/g,
    accept: phoneDigits,
  },
];

export interface RedactionSettings {
  /** On by default: turning it off sends raw user text to the judge and the outputs. */
  enabled: boolean;
  /** Kinds to redact; all when absent. */
  kinds?: readonly RedactionKind[];
}

export const DEFAULT_REDACTION: RedactionSettings = { enabled: true };

/** The rules of the kinds asked for (all of them for the default list), computed once per list. */
const rulesByKinds = new WeakMap<readonly RedactionKind[], Rule[]>([[REDACTION_KINDS, RULES]]);
function rulesFor(kinds: readonly RedactionKind[]): Rule[] {
  let rules = rulesByKinds.get(kinds);
  if (!rules) {
    rules = RULES.filter((r) => kinds.includes(r.kind));
    rulesByKinds.set(kinds, rules);
  }
  return rules;
}

/** One pass of the rules over `text` as it is. */
function redactRaw(text: string, counts: RedactionCounts, kinds: readonly RedactionKind[]): string {
  let out = text;
  for (const rule of rulesFor(kinds)) {
    if (rule.pre && !rule.pre(out)) continue;
    rule.re.lastIndex = 0;
    if (!rule.re.test(out)) continue;
    rule.re.lastIndex = 0;
    out = out.replace(rule.re, (match: string, ...rest: unknown[]) => {
      if (rule.accept && !rule.accept(match)) return match;
      counts[rule.kind] = (counts[rule.kind] ?? 0) + 1;
      return rule.replace ? rule.replace(match, ...(rest as string[])) : ph(rule.kind);
    });
  }
  return out;
}

const PERCENT = /%[0-9A-Fa-f]{2}/g;
/** Where a percent-encoded segment ends: whitespace, quotes, angle brackets, backslash. */
const isStop = (c: number) =>
  c <= 32 || c === 34 || c === 39 || c === 60 || c === 62 || c === 92 || c === 0x85 || c === 0xa0;

/** Decodes %XX runs (UTF-8 where valid, else byte by byte); other text as it is. */
function percentDecode(s: string): string {
  return s.replace(/(?:%[0-9A-Fa-f]{2})+/g, (run) => {
    try {
      return decodeURIComponent(run);
    } catch {
      return run.replace(/%([0-9A-Fa-f]{2})/g, (_m, h: string) =>
        String.fromCharCode(parseInt(h, 16)),
      );
    }
  });
}

/**
 * The second pass: each percent-encoded segment (a run of non-space text holding a
 * %XX) is decoded (twice at most, for double encoding) and redacted; when that finds
 * something, the segment is replaced by its redacted decoded text. So `user%40corp.com`,
 * `token%3Dghp_…` and `%26sig%3D…` are found as what they decode to. Linear: each
 * character is looked at a bounded number of times.
 */
function redactEncoded(
  text: string,
  counts: RedactionCounts,
  kinds: readonly RedactionKind[],
): string {
  if (!text.includes('%')) return text;
  PERCENT.lastIndex = 0;
  if (!PERCENT.test(text)) return text;
  PERCENT.lastIndex = 0;
  let out = '';
  let last = 0;
  for (let m = PERCENT.exec(text); m; m = PERCENT.exec(text)) {
    let start = m.index;
    while (start > last && !isStop(text.charCodeAt(start - 1))) start--;
    let end = m.index + 3;
    while (end < text.length && !isStop(text.charCodeAt(end))) end++;
    const segment = text.slice(start, end);
    let decoded = percentDecode(segment);
    if (/%[0-9A-Fa-f]{2}/.test(decoded)) decoded = percentDecode(decoded);
    const found: RedactionCounts = {};
    const redacted = decoded === segment ? segment : redactRaw(decoded, found, kinds);
    if (Object.keys(found).length > 0) {
      addRedactionCounts(counts, found);
      out += text.slice(last, start) + redacted;
      last = end;
    }
    PERCENT.lastIndex = end;
  }
  return last === 0 ? text : out + text.slice(last);
}

/**
 * Replaces every find in `text` by its placeholder; adds what it found to `counts`.
 * The text as it is first, then what its percent-encoded segments decode to.
 */
export function redactText(
  text: string,
  counts: RedactionCounts = {},
  kinds: readonly RedactionKind[] = REDACTION_KINDS,
): string {
  // Metadata keys and short values repeat (`language`, `"typescript"`): the short texts
  // found clean under all kinds are remembered (bounded), so they cost one lookup.
  const memo = kinds === REDACTION_KINDS && text.length <= CLEAN_MAX_CHARS;
  if (memo && CLEAN.has(text)) return text;
  const out = redactEncoded(redactRaw(text, counts, kinds), counts, kinds);
  if (memo && out === text) {
    if (CLEAN.size >= CLEAN_MAX_ENTRIES) CLEAN.clear();
    CLEAN.add(text);
  }
  return out;
}

/** Short texts with no find (a text is unchanged exactly when nothing was found in it). */
const CLEAN = new Set<string>();
const CLEAN_MAX_CHARS = 64;
const CLEAN_MAX_ENTRIES = 50_000;

const FIXED = new Set<string>(TURN_FIELDS);
const PLACEHOLDER = /^\[[A-Z_]{2,30}\]$/;

/** Sets an own property, `__proto__` included (JSON.parse makes such keys own properties). */
function setOwn(o: Record<string, unknown>, k: string, v: unknown) {
  if (k === '__proto__')
    Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
  else o[k] = v;
}

/**
 * A key redacted: two keys that redact to the same text (two e-mail addresses) keep
 * both values, the second as `[EMAIL]#2`.
 */
function redactKey(
  k: string,
  into: Record<string, unknown>,
  counts: RedactionCounts,
  kinds: readonly RedactionKind[],
): string {
  const r = redactText(k, counts, kinds);
  if (r === k || !Object.prototype.hasOwnProperty.call(into, r)) return r;
  let n = 2;
  while (Object.prototype.hasOwnProperty.call(into, `${r}#${n}`)) n++;
  return `${r}#${n}`;
}

/**
 * Redacts a metadata value: strings anywhere inside it and the keys of its objects; a
 * string under a secret's name (`password`, `apiKey`, …) is replaced whole. Iterative
 * (an explicit stack), so no nesting depth can overflow the call stack; rows nested
 * deeper than MAX_VALUE_DEPTH are quarantined `too_deep` before they get here.
 */
function redactValue(
  v: unknown,
  counts: RedactionCounts,
  kinds: readonly RedactionKind[],
  name?: string,
): unknown {
  const secretLeaf = (key: string | undefined, x: unknown): unknown => {
    if (typeof x !== 'string') return x;
    if (
      key !== undefined &&
      kinds.includes('PASSWORD') &&
      x.length > 0 &&
      !PLACEHOLDER.test(x) &&
      isSecretName(key)
    ) {
      counts.PASSWORD = (counts.PASSWORD ?? 0) + 1;
      return ph('PASSWORD');
    }
    return redactText(x, counts, kinds);
  };
  if (typeof v !== 'object' || v === null) return secretLeaf(name, v);
  const stack: { src: object; dst: unknown[] | Record<string, unknown> }[] = [];
  const child = (key: string | undefined, x: unknown): unknown => {
    if (typeof x !== 'object' || x === null) return secretLeaf(key, x);
    const dst: unknown[] | Record<string, unknown> = Array.isArray(x) ? [] : {};
    stack.push({ src: x, dst });
    return dst;
  };
  const root = child(undefined, v);
  for (let top = stack.pop(); top; top = stack.pop()) {
    const { src, dst } = top;
    if (Array.isArray(src)) {
      const out = dst as unknown[];
      for (let i = 0; i < src.length; i++) out[i] = child(undefined, src[i]);
    } else {
      const out = dst as Record<string, unknown>;
      for (const [k, x] of Object.entries(src))
        setOwn(out, redactKey(k, out, counts, kinds), child(k, x));
    }
  }
  return root;
}

/**
 * Counts per kind over everything a source step redacted, plus the text redactor the
 * step applies to each validated turn and to the raw text of each quarantined line.
 */
export class Redactor {
  readonly counts: RedactionCounts = {};
  private readonly kinds: readonly RedactionKind[];

  constructor(readonly settings: RedactionSettings = DEFAULT_REDACTION) {
    this.kinds = settings.kinds ?? REDACTION_KINDS;
  }

  text(s: string): string {
    return this.settings.enabled ? redactText(s, this.counts, this.kinds) : s;
  }

  /**
   * The turn with its userMessage and its metadata (extra fields, their keys and values
   * at any depth) redacted. The typed fields (ids, model, tools, timestamp) are left as
   * they are: they are not free text.
   */
  turn<T extends TelemetryTurn>(t: T): T {
    if (!this.settings.enabled) return t;
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(t)) {
      if (FIXED.has(k)) setOwn(out, k, v);
      else
        setOwn(
          out,
          redactKey(k, out, this.counts, this.kinds),
          redactValue(v, this.counts, this.kinds, k),
        );
    }
    out.userMessage = redactText(t.userMessage, this.counts, this.kinds);
    return out as T;
  }

  /** The manifest's `redaction` block: whether it ran, and counts by kind (sorted). */
  summary(): RedactionSummary {
    return redactionSummary(this.settings.enabled, this.counts);
  }
}

export interface RedactionSummary {
  enabled: boolean;
  total: number;
  byKind: RedactionCounts;
}

export function redactionSummary(enabled: boolean, counts: RedactionCounts): RedactionSummary {
  const byKind = Object.fromEntries(
    Object.entries(counts)
      .filter(([, n]) => (n ?? 0) > 0)
      .sort(([a], [b]) => (a < b ? -1 : 1)),
  ) as RedactionCounts;
  const total = Object.values(byKind).reduce((a, n) => a + (n ?? 0), 0);
  return { enabled, total, byKind };
}

/** Adds `b`'s counts into `a`. */
function addRedactionCounts(a: RedactionCounts, b: RedactionCounts): RedactionCounts {
  for (const [k, n] of Object.entries(b) as [RedactionKind, number][]) a[k] = (a[k] ?? 0) + n;
  return a;
}
