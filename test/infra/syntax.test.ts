import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseBicep, syntaxErrors } from './bicep';
import { bicepFiles, INFRA } from './deployment';

describe('infra/*.bicep syntax (tree-sitter-bicep)', () => {
  const files = bicepFiles();

  it('finds main.bicep and its modules', () => {
    expect(files.map((f) => relative(INFRA, f))).toEqual(
      expect.arrayContaining([
        'main.bicep',
        'app/api.bicep',
        'app/identity.bicep',
        'app/kusto-viewer.bicep',
        'app/monitoring.bicep',
        'app/openai.bicep',
        'app/rbac.bicep',
        'app/storage.bicep',
      ]),
    );
  });

  it.each(files.map((f) => [relative(INFRA, f), f]))('%s parses with no syntax error', (_, f) => {
    expect(syntaxErrors(parseBicep(readFileSync(f, 'utf8')))).toEqual([]);
  });

  it.each([
    ['an unfinished parameter', 'param x string =\n'],
    ['an unclosed object', 'var a = {\n  b: 1\n'],
    ['two values for one property', "resource r 'a/b@1' = {\n  name: 'a' 'b'\n}\n"],
    ['a ternary without its alternative', 'var x = a ? b\n'],
  ])('reports %s', (_, text) => {
    expect(syntaxErrors(parseBicep(text)).length).toBeGreaterThan(0);
  });
});
