#!/usr/bin/env node
/**
 * The longest function bodies, by line count (the lines of the body's braces, both
 * included), measured with the TypeScript compiler API.
 *
 *   node bench/longest-functions.mjs [--top N] [files or folders...]
 *
 * Default: the trigger layer and the CLI jobs (functions/**, cli/jobs.ts), top 5.
 * Counts every function-like body: declarations, methods, arrows, function expressions.
 * A nested function counts in its parent's body too (the parent's screen holds it).
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import ts from 'typescript';

const args = process.argv.slice(2);
let top = 5;
const roots = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--top') top = Number(args[++i]);
  else roots.push(args[i]);
}
if (roots.length === 0) roots.push('functions', 'cli/jobs.ts');

const files = [];
const walk = (p) => {
  if (statSync(p).isDirectory()) for (const e of readdirSync(p).sort()) walk(join(p, e));
  else if (p.endsWith('.ts') && !p.endsWith('.d.ts')) files.push(p);
};
for (const r of roots) walk(r);

const nameOf = (node) => {
  if (node.name && ts.isIdentifier(node.name)) return node.name.text;
  const parent = node.parent;
  if (parent && ts.isVariableDeclaration(parent) && ts.isIdentifier(parent.name))
    return parent.name.text;
  if (parent && ts.isPropertyAssignment(parent) && ts.isIdentifier(parent.name))
    return parent.name.text;
  if (ts.isConstructorDeclaration(node)) return 'constructor';
  return '(anonymous)';
};

const rows = [];
for (const file of files) {
  const text = readFileSync(file, 'utf8');
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const visit = (node) => {
    if (ts.isFunctionLike(node) && node.body && ts.isBlock(node.body)) {
      const start = sf.getLineAndCharacterOfPosition(node.body.getStart(sf)).line;
      const end = sf.getLineAndCharacterOfPosition(node.body.getEnd()).line;
      rows.push({
        lines: end - start + 1,
        name: nameOf(node),
        at: `${relative('.', file)}:${start + 1}`,
      });
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
}
rows.sort((a, b) => b.lines - a.lines || (a.at < b.at ? -1 : 1));
for (const r of rows.slice(0, top))
  console.log(`${String(r.lines).padStart(5)}  ${r.name}  ${r.at}`);
