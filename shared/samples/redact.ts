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
}

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

const phoneDigits = (s: string) => {
  const n = s.replace(/\D/g, '').length;
  return n >= 10 && n <= 15;
};

const RULES: Rule[] = [
  {
    kind: 'PRIVATE_KEY',
    // Through its END line, or to the end of the text when it was cut off.
    re: /-----BEGIN[ A-Z0-9]{0,40}PRIVATE KEY(?: BLOCK)?-----[\s\S]*?(?:-----END[ A-Z0-9]{0,40}PRIVATE KEY(?: BLOCK)?-----|$)/g,
  },
  {
    kind: 'AZURE_CONNECTION_STRING',
    // Storage / Service Bus / Event Hubs: the settings around a key or signature.
    re: /(?:\b(?:DefaultEndpointsProtocol|AccountName|Endpoint|BlobEndpoint|QueueEndpoint|TableEndpoint|FileEndpoint|SharedAccessKeyName)=[^;\s"'<>]{0,300};\s?){0,8}\b(?:AccountKey|SharedAccessKey|SharedAccessSignature)=[^;\s"'<>]{1,500}(?:;\s?(?:EndpointSuffix|EntityPath|BlobEndpoint|QueueEndpoint|TableEndpoint|FileEndpoint)=[^;\s"'<>]{0,300}){0,6};?/g,
  },
  {
    kind: 'AZURE_SAS_TOKEN',
    // A query string that carries a signature (`sig=`), with its sibling parameters.
    re: /(?:\b(?:sv|ss|srt|sp|se|st|spr|sr|si|sdd|skoid|sktid|skt|ske|sks|skv|rscc|rscd|rsce|rscl|rsct)=[^&\s"'<>#]{0,200}&){0,20}\bsig=[A-Za-z0-9%+/]{16,200}={0,2}(?:&(?:sv|ss|srt|sp|se|st|spr|sr|si|sdd|skoid|sktid|skt|ske|sks|skv|rscc|rscd|rsce|rscl|rsct)=[^&\s"'<>#]{0,200}){0,20}/g,
  },
  {
    kind: 'SLACK_WEBHOOK',
    re: /https:\/\/hooks\.slack\.com\/(?:services|workflows|triggers)\/[A-Za-z0-9_/-]{20,200}/g,
  },
  {
    kind: 'URL_CREDENTIALS',
    // scheme://user:password@host keeps the scheme and host.
    re: /\b([a-z][a-z0-9+.-]{0,20}:\/\/)[^\s/:@"'<>]{1,200}:[^\s/@"'<>]{1,200}@/gi,
    replace: (_m, scheme) => `${scheme}${ph('URL_CREDENTIALS')}@`,
  },
  {
    kind: 'JWT',
    re: /\beyJ[A-Za-z0-9_-]{5,4000}\.eyJ[A-Za-z0-9_-]{2,8000}\.[A-Za-z0-9_-]{0,2000}/g,
  },
  {
    kind: 'GITHUB_TOKEN',
    re: /\b(?:gh[pousr]_[A-Za-z0-9]{36,251}|github_pat_[A-Za-z0-9_]{22,255})\b/g,
  },
  { kind: 'ANTHROPIC_API_KEY', re: /\bsk-ant-[A-Za-z0-9_-]{20,300}/g },
  {
    kind: 'OPENAI_API_KEY',
    // sk-..., sk-proj-..., sk-svcacct-...; a digit somewhere keeps "sk-learn-style-names" out.
    re: /\bsk-(?=[A-Za-z0-9_-]{0,300}\d)[A-Za-z0-9_-]{20,300}/g,
  },
  { kind: 'AWS_ACCESS_KEY', re: /\b(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16}\b/g },
  {
    kind: 'AWS_SECRET_KEY',
    // 40 base64 characters are only a secret in context: after its usual names.
    re: /(aws_?secret(?:_?access)?_?key["']?\s{0,5}[:=]\s{0,5}["']?)[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+])/gi,
    replace: (_m, lead) => `${lead}${ph('AWS_SECRET_KEY')}`,
  },
  { kind: 'SLACK_TOKEN', re: /\bxox[abposr]-[A-Za-z0-9-]{10,250}/g },
  { kind: 'GOOGLE_API_KEY', re: /\bAIza[0-9A-Za-z_-]{35}(?![0-9A-Za-z_-])/g },
  { kind: 'GOOGLE_OAUTH_TOKEN', re: /\bya29\.[0-9A-Za-z_-]{20,2000}/g },
  {
    kind: 'AZURE_STORAGE_KEY',
    // A bare account key: 64 random bytes in base64 (88 characters ending in ==).
    re: /(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{86}==(?![A-Za-z0-9+/=])/g,
  },
  {
    kind: 'EMAIL',
    re: /(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?){0,8}\.[A-Za-z]{2,24}\b/g,
  },
  {
    kind: 'IP_ADDRESS',
    // IPv6 (full or compressed) and IPv4, not inside a longer dotted number (versions).
    re: /(?<![0-9A-Za-z:.])(?:(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}|(?:[0-9A-Fa-f]{1,4}:){1,7}:(?:[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){0,6})?|::(?:[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){0,6}))(?![0-9A-Za-z:])|(?<![0-9A-Za-z.])\d{1,3}(?:\.\d{1,3}){3}(?![0-9A-Za-z]|\.\d)/g,
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

/** Replaces every find in `text` by its placeholder; adds what it found to `counts`. */
export function redactText(
  text: string,
  counts: RedactionCounts = {},
  kinds: readonly RedactionKind[] = REDACTION_KINDS,
): string {
  let out = text;
  for (const rule of RULES) {
    if (!kinds.includes(rule.kind)) continue;
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

const FIXED = new Set<string>(TURN_FIELDS);

/** Redacts strings anywhere inside a metadata value (arrays and objects walked). */
function redactValue(
  v: unknown,
  counts: RedactionCounts,
  kinds: readonly RedactionKind[],
): unknown {
  if (typeof v === 'string') return redactText(v, counts, kinds);
  if (Array.isArray(v)) return v.map((x) => redactValue(x, counts, kinds));
  if (typeof v === 'object' && v !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = redactValue(x, counts, kinds);
    return out;
  }
  return v;
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
   * The turn with its userMessage and its metadata (extra fields) redacted. The typed
   * fields (ids, model, tools, timestamp) are left as they are: they are not free text.
   */
  turn<T extends TelemetryTurn>(t: T): T {
    if (!this.settings.enabled) return t;
    const out: Record<string, unknown> = { ...t };
    out.userMessage = redactText(t.userMessage, this.counts, this.kinds);
    for (const k of Object.keys(out))
      if (!FIXED.has(k)) out[k] = redactValue(out[k], this.counts, this.kinds);
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

/** Adds `b`'s counts into `a` (fan-in sums the batches'). */
export function addRedactionCounts(a: RedactionCounts, b: RedactionCounts): RedactionCounts {
  for (const [k, n] of Object.entries(b) as [RedactionKind, number][]) a[k] = (a[k] ?? 0) + n;
  return a;
}
