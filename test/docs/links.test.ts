/**
 * The documents hold together: every relative link in README.md, docs/*.md and
 * test/README.md points at a file that exists (and at a heading that exists, for a
 * `#anchor`), README.md stays a short entry point, and docs/settings.md names every
 * setting the code reads from the environment.
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(__dirname, '..', '..');
const docs = [
  'README.md',
  'test/README.md',
  ...readdirSync(join(root, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
];

/** The lines outside fenced code blocks. */
function prose(text: string): string[] {
  let fenced = false;
  return text.split('\n').filter((line) => {
    if (/^\s*(```|~~~)/.test(line)) {
      fenced = !fenced;
      return false;
    }
    return !fenced;
  });
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, -N for repeats. */
export function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const line of prose(markdown)) {
    const m = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!m) continue;
    const base = m[1]!
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/ /g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

/** Relative links and images of a document: [text](target) outside code. */
function links(markdown: string): string[] {
  const text = prose(markdown)
    .join('\n')
    .replace(/`[^`\n]*`/g, '');
  return [...text.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)]
    .map((m) => m[1]!)
    .filter((t) => !/^[a-z][a-z0-9+.-]*:/i.test(t));
}

describe('the documents', () => {
  it('finds the documents and their links', () => {
    expect(docs).toContain('docs/architecture.md');
    expect(links('see [a](docs/a.md#b) and [x](https://example.com) `[c](d.md)`')).toEqual([
      'docs/a.md#b',
    ]);
    expect([
      ...anchors('# A title\n## Progress, `--json` and logs\n## A title\n```\n# no\n```'),
    ]).toEqual(['a-title', 'progress---json-and-logs', 'a-title-1']);
  });

  for (const doc of docs) {
    it(`${doc}: every relative link resolves`, () => {
      const text = readFileSync(join(root, doc), 'utf8');
      const broken: string[] = [];
      for (const target of links(text)) {
        const [path, anchor] = target.split('#') as [string, string | undefined];
        const file = path === '' ? join(root, doc) : resolve(root, dirname(doc), decodeURI(path));
        if (!existsSync(file)) {
          broken.push(`${target}: no file ${relative(root, file)}`);
          continue;
        }
        if (anchor && file.endsWith('.md') && statSync(file).isFile()) {
          if (!anchors(readFileSync(file, 'utf8')).has(anchor))
            broken.push(`${target}: no heading #${anchor} in ${relative(root, file)}`);
        }
      }
      expect(broken).toEqual([]);
    });
  }

  it('README.md is under 300 lines and links every document in docs/', () => {
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    expect(readme.trimEnd().split('\n').length).toBeLessThan(300);
    const linked = new Set(links(readme).map((t) => t.split('#')[0]));
    const unlinked = docs.filter((d) => d.startsWith('docs/') && !linked.has(d));
    expect(unlinked).toEqual([]);
  });

  it('docs/settings.md names every SFT_, JUDGE_ and AZURE_OPENAI_ variable the code reads', () => {
    const settings = readFileSync(join(root, 'docs', 'settings.md'), 'utf8');
    const names = new Set<string>();
    const walk = (dir: string): void => {
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        const p = join(dir, entry.name);
        if (entry.isDirectory()) walk(p);
        else if (/\.(ts|cjs|mjs|js)$/.test(entry.name)) {
          const src = readFileSync(p, 'utf8');
          // A name read from an environment object (env.X, env['X'], process.env.X) or
          // declared as a key of a settings schema (`  SFT_X: z...`).
          for (const m of src.matchAll(
            /\benv(?:\.|\[['"])((?:SFT|JUDGE|AZURE_OPENAI)_[A-Z0-9_]*[A-Z0-9])|^\s+((?:SFT|JUDGE)_[A-Z0-9_]*[A-Z0-9]):\s*(?:z\.|int|list|storageName|sourceRef|intFrom)/gm,
          ))
            names.add(m[1] ?? m[2]!);
        }
      }
    };
    for (const dir of ['shared', 'adapters', 'functions', 'cli']) walk(join(root, dir));
    expect(names.size).toBeGreaterThan(40);
    expect([...names].filter((n) => !settings.includes(`\`${n}\``)).sort()).toEqual([]);
  });
});
