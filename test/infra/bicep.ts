/**
 * Reading infra/*.bicep in tests without a Bicep compiler (none installs here): the
 * real tree-sitter-bicep grammar gives the syntax tree, and a small evaluator works
 * out the values the tests check (app settings, queue and container names, resource
 * properties). It covers the expressions these templates use and throws on anything
 * else, so a template change it cannot follow fails loudly instead of passing.
 * Values only Azure knows at deployment time (endpoints, client ids) come from
 * `runtimeProperty`, shaped as Azure returns them.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import Parser from 'tree-sitter';
import Bicep from 'tree-sitter-bicep';

type SyntaxNode = Parser.SyntaxNode;
export type Value = string | number | boolean | null | Value[] | { [key: string]: Value } | Ref;

/** A resource, module or part of one that only Azure can resolve fully. */
export class Ref {
  constructor(
    readonly owner: BicepModule,
    readonly target:
      | { kind: 'resource'; decl: ResourceDecl; path: string[] }
      | { kind: 'module'; symbol: string; outputs: boolean },
  ) {}
}

export interface ResourceDecl {
  symbol: string;
  /** Full type without the API version, e.g. `Microsoft.Web/sites/config`. */
  type: string;
  existing: boolean;
  /** The body (an object), or the loop's body for `[for x in xs: {...}]`. */
  body: SyntaxNode;
  loop?: { variable: string; items: SyntaxNode };
  condition?: SyntaxNode;
  parent?: ResourceDecl;
}

const parser = new Parser();
parser.setLanguage(Bicep as Parser.Language);

export function parseBicep(text: string): Parser.Tree {
  return parser.parse(text);
}

/** Every ERROR or MISSING node of a parse, as `line:col text`. */
export function syntaxErrors(tree: Parser.Tree): string[] {
  const out: string[] = [];
  const walk = (n: SyntaxNode) => {
    if (n.type === 'ERROR' || n.isMissing)
      out.push(
        `${n.startPosition.row + 1}:${n.startPosition.column + 1} ${n.isMissing ? `missing ${n.type}` : JSON.stringify(n.text.slice(0, 60))}`,
      );
    for (const c of n.children) walk(c);
  };
  walk(tree.rootNode);
  return out;
}

/** `v` if it is a string; a template that computes something else here is an error. */
export function asString(v: Value | undefined, what: string): string {
  if (typeof v !== 'string') throw new Error(`${what} is not a string: ${JSON.stringify(v)}`);
  return v;
}

const named = (n: SyntaxNode) => n.namedChildren.filter((c) => c.type !== 'comment');

function isObject(v: Value | undefined): v is { [key: string]: Value } {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Ref);
}

const fakeGuid = (...parts: string[]) => {
  const h = createHash('sha256').update(parts.join('|')).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`;
};

/** What Azure fills in at deployment time, for the properties the templates read. */
export const RUNTIME = {
  subscriptionId: '00000000-0000-4000-8000-000000000001',
  tenantId: '00000000-0000-4000-8000-000000000002',
  clientId: '00000000-0000-4000-8000-000000000003',
  principalId: '00000000-0000-4000-8000-000000000004',
};

/** Undefined while `path` is a prefix of a known property (`properties`, ...). */
function runtimeProperty(type: string, name: string, path: string): Value | undefined {
  const key = `${type}:${path}`;
  switch (key) {
    case 'Microsoft.Storage/storageAccounts:properties.primaryEndpoints.blob':
      return `https://${name}.blob.core.windows.net/`;
    case 'Microsoft.Storage/storageAccounts:properties.primaryEndpoints.queue':
      return `https://${name}.queue.core.windows.net/`;
    case 'Microsoft.ManagedIdentity/userAssignedIdentities:properties.clientId':
      return RUNTIME.clientId;
    case 'Microsoft.ManagedIdentity/userAssignedIdentities:properties.principalId':
      return RUNTIME.principalId;
    case 'Microsoft.Insights/components:properties.ConnectionString':
      return `InstrumentationKey=${fakeGuid(name)};IngestionEndpoint=https://westeurope-5.in.applicationinsights.azure.com/`;
    case 'Microsoft.CognitiveServices/accounts:properties.endpoint':
      return `https://${name}.openai.azure.com/`;
    case 'Microsoft.Web/sites:properties.defaultHostName':
      return `${name}.azurewebsites.net`;
    default:
      if (path.split('.').length < 3 && path.startsWith('properties')) return undefined;
      throw new Error(`no runtime value for ${key}`);
  }
}

/** One .bicep file with its parameter values: evaluates its declarations. */
export class BicepModule {
  readonly tree: Parser.Tree;
  readonly params = new Map<string, SyntaxNode>();
  readonly paramDefaults = new Map<string, SyntaxNode | undefined>();
  readonly vars = new Map<string, SyntaxNode>();
  readonly outputs = new Map<string, SyntaxNode>();
  readonly modules = new Map<string, SyntaxNode>();
  readonly resources: ResourceDecl[] = [];
  private readonly cache = new Map<string, Value>();
  private readonly children = new Map<string, BicepModule>();

  constructor(
    readonly file: string,
    private readonly args: Record<string, Value> = {},
  ) {
    this.tree = parseBicep(readFileSync(file, 'utf8'));
    const errors = syntaxErrors(this.tree);
    if (errors.length) throw new Error(`${file}: syntax errors ${errors.join('; ')}`);
    for (const d of named(this.tree.rootNode)) {
      const [id] = named(d);
      const name = id?.text ?? '';
      switch (d.type) {
        case 'parameter_declaration': {
          const kids = named(d);
          const def = kids.length > 2 ? kids[kids.length - 1] : undefined;
          this.params.set(name, d);
          this.paramDefaults.set(name, def);
          break;
        }
        case 'variable_declaration':
          this.vars.set(name, named(d)[1]!);
          break;
        case 'output_declaration':
          this.outputs.set(name, named(d).at(-1)!);
          break;
        case 'module_declaration':
          this.modules.set(name, d);
          break;
        case 'resource_declaration':
          this.collectResource(d);
          break;
      }
    }
    for (const k of Object.keys(args))
      if (!this.params.has(k)) throw new Error(`${file}: no param ${k}`);
  }

  private collectResource(d: SyntaxNode, parent?: ResourceDecl): void {
    const [id, typeNode, value] = named(d);
    const typeText = stringLiteral(typeNode!).split('@')[0]!;
    const type = parent && !typeText.includes('/') ? `${parent.type}/${typeText}` : typeText;
    const existing = d.children.some((c) => c.type === 'existing');
    let body = value!;
    let loop: ResourceDecl['loop'];
    let condition: SyntaxNode | undefined;
    if (body.type === 'for_statement') {
      const [variable, items, loopBody] = named(body);
      loop = { variable: variable!.text, items: items! };
      body = loopBody!;
    } else if (body.type === 'if_statement') {
      const [cond, ifBody] = named(body);
      condition = cond;
      body = ifBody!;
    }
    const decl: ResourceDecl = {
      symbol: id!.text,
      type,
      existing,
      body,
      ...(loop ? { loop } : {}),
      ...(condition ? { condition } : {}),
      ...(parent ? { parent } : {}),
    };
    this.resources.push(decl);
    for (const p of named(body))
      if (p.type === 'object_property' && named(p)[0]?.type === 'resource_declaration')
        this.collectResource(named(p)[0]!, decl);
  }

  /** Decorator call names of a parameter (`minValue`, `allowed`, ...) with their first argument. */
  decorators(param: string): Record<string, Value> {
    const d = this.params.get(param);
    if (!d) throw new Error(`no param ${param}`);
    const out: Record<string, Value> = {};
    const decs = d.previousNamedSibling;
    if (decs?.type !== 'decorators') return out;
    for (const dec of named(decs)) {
      const call = named(dec)[0]!;
      const fn = call.childForFieldName('function')!.text;
      const arg = named(call.childForFieldName('arguments')!)[0];
      out[fn] = arg ? this.eval(arg) : null;
    }
    return out;
  }

  value(name: string): Value {
    if (this.cache.has(name)) return this.cache.get(name)!;
    let v: Value;
    if (this.params.has(name)) {
      if (name in this.args) v = this.args[name]!;
      else {
        const def = this.paramDefaults.get(name);
        if (!def) throw new Error(`${this.file}: param ${name} has no value and no default`);
        v = this.eval(def);
      }
    } else if (this.vars.has(name)) v = this.eval(this.vars.get(name)!);
    else if (this.modules.has(name))
      v = new Ref(this, { kind: 'module', symbol: name, outputs: false });
    else {
      const r = this.resources.find((x) => x.symbol === name && !x.parent);
      if (!r) throw new Error(`${this.file}: unknown symbol ${name}`);
      v = new Ref(this, { kind: 'resource', decl: r, path: [] });
    }
    this.cache.set(name, v);
    return v;
  }

  output(name: string): Value {
    const o = this.outputs.get(name);
    if (!o) throw new Error(`${this.file}: no output ${name}`);
    return this.eval(o);
  }

  /** The module a `module` declaration calls, with its params evaluated here. */
  module(symbol: string): BicepModule {
    const hit = this.children.get(symbol);
    if (hit) return hit;
    const d = this.modules.get(symbol);
    if (!d) throw new Error(`${this.file}: no module ${symbol}`);
    const [, path, value] = named(d);
    const body = value!.type === 'if_statement' ? named(value!)[1]! : value!;
    const props = this.eval(body);
    if (!isObject(props)) throw new Error('module body is not an object');
    const params = props.params ?? {};
    if (!isObject(params)) throw new Error('module params is not an object');
    const m = new BicepModule(join(dirname(this.file), stringLiteral(path!)), params);
    this.children.set(symbol, m);
    return m;
  }

  /** The condition of a conditional module (`= if (...)`), evaluated; true if none. */
  moduleCondition(symbol: string): boolean {
    const value = named(this.modules.get(symbol)!)[2]!;
    return value.type === 'if_statement' ? this.eval(named(value)[0]!) === true : true;
  }

  /** A resource's body evaluated, with `loopValue` bound for a loop's item. */
  body(decl: ResourceDecl, loopValue?: Value): { [key: string]: Value } {
    const locals = decl.loop && loopValue !== undefined ? { [decl.loop.variable]: loopValue } : {};
    const v = this.eval(decl.body, locals);
    if (!isObject(v)) throw new Error(`${decl.symbol}: body is not an object`);
    return v;
  }

  /** Names of every instance of a resource (each loop item's). */
  names(decl: ResourceDecl): string[] {
    if (!decl.loop) return [asString(this.body(decl).name, `${decl.symbol}.name`)];
    const items = this.eval(decl.loop.items);
    if (!Array.isArray(items)) throw new Error(`${decl.symbol}: loop over a non-array`);
    return items.map((item) => asString(this.body(decl, item).name, `${decl.symbol}.name`));
  }

  resourcesOfType(type: string): ResourceDecl[] {
    return this.resources.filter((r) => r.type.toLowerCase() === type.toLowerCase());
  }

  eval(n: SyntaxNode, locals: Record<string, Value> = {}): Value {
    const ev = (x: SyntaxNode) => this.eval(x, locals);
    switch (n.type) {
      case 'string':
        return stringValue(n, ev);
      case 'number':
        return Number(n.text);
      case 'boolean':
        return n.text === 'true';
      case 'null':
        return null;
      case 'parenthesized_expression':
        return ev(named(n)[0]!);
      case 'identifier':
        return n.text in locals ? locals[n.text]! : this.value(n.text);
      case 'array':
        return named(n).map(ev);
      case 'object': {
        const out: { [key: string]: Value } = {};
        for (const p of named(n)) {
          if (p.type !== 'object_property') throw new Error(`unsupported ${p.type} in object`);
          const [k, v] = named(p);
          if (k!.type === 'resource_declaration') continue;
          const key = k!.type === 'string' ? asString(ev(k!), 'property name') : k!.text;
          out[key] = ev(v!);
        }
        return out;
      }
      case 'member_expression': {
        const target = n.childForFieldName('object')!;
        // tree-sitter-bicep 1.1.0 reads `a + b.c` as `(a + b).c`: refuse rather than misread.
        if (target.type === 'binary_expression' || target.type === 'unary_expression')
          throw new Error(
            `${this.file}: ambiguous parse of ${n.text}: wrap the operand in a call or parentheses`,
          );
        const obj = ev(target);
        return this.member(obj, n.childForFieldName('property')!.text);
      }
      case 'subscript_expression': {
        const obj = ev(n.childForFieldName('object')!);
        const idx = ev(n.childForFieldName('index')!);
        if (Array.isArray(obj) && typeof idx === 'number') {
          if (idx >= obj.length) throw new Error(`index ${idx} out of range`);
          return obj[idx]!;
        }
        if (isObject(obj) && typeof idx === 'string') return obj[idx] ?? null;
        throw new Error(`cannot index ${n.text}`);
      }
      case 'ternary_expression':
        return ev(n.childForFieldName('condition')!) === true
          ? ev(n.childForFieldName('consequence')!)
          : ev(n.childForFieldName('alternative')!);
      case 'unary_expression': {
        const op = n.children[0]!.type;
        const a = ev(n.childForFieldName('argument')!);
        if (op === '!') return !a;
        if (op === '-' && typeof a === 'number') return -a;
        throw new Error(`unsupported unary ${op}`);
      }
      case 'binary_expression':
        return binary(n.children[1]!.type, ev(n.childForFieldName('left')!), () =>
          ev(n.childForFieldName('right')!),
        );
      case 'call_expression':
        return this.call(
          n.childForFieldName('function')!.text,
          named(n.childForFieldName('arguments')!).map(ev),
        );
      default:
        throw new Error(`${this.file}: unsupported expression ${n.type}: ${n.text.slice(0, 60)}`);
    }
  }

  private member(obj: Value, prop: string): Value {
    if (obj instanceof Ref) {
      const t = obj.target;
      if (t.kind === 'module') {
        if (!t.outputs) {
          if (prop !== 'outputs') throw new Error(`module member ${prop}`);
          return new Ref(obj.owner, { ...t, outputs: true });
        }
        return obj.owner.module(t.symbol).output(prop);
      }
      return obj.owner.resourceMember(t.decl, [...t.path, prop]);
    }
    if (isObject(obj)) {
      if (!(prop in obj)) throw new Error(`no property ${prop}`);
      return obj[prop]!;
    }
    throw new Error(`cannot read ${prop} of ${JSON.stringify(obj)}`);
  }

  /** `name` and `id` from the body; other properties as Azure fills them in. */
  resourceMember(decl: ResourceDecl, path: string[]): Value {
    const name = asString(this.body(decl).name, `${decl.symbol}.name`);
    if (path.length === 1 && path[0] === 'name') return name;
    if (path.length === 1 && path[0] === 'id')
      return `/subscriptions/${RUNTIME.subscriptionId}/resourceGroups/rg/providers/${decl.type}/${name}`;
    const known = runtimeProperty(decl.type, name, path.join('.'));
    return known === undefined ? new Ref(this, { kind: 'resource', decl, path }) : known;
  }

  private call(fn: string, a: Value[]): Value {
    const str = (i: number) => {
      const v = a[i];
      if (typeof v !== 'string') throw new Error(`${fn}: argument ${i} is not a string`);
      return v;
    };
    const num = (i: number) => {
      const v = a[i];
      if (typeof v !== 'number') throw new Error(`${fn}: argument ${i} is not a number`);
      return v;
    };
    switch (fn) {
      case 'union': {
        if (a.every(isObject)) return Object.assign({}, ...a) as Value;
        if (a.every((x) => Array.isArray(x))) return [...new Set(a.flat())] as Value[];
        throw new Error('union of mixed types');
      }
      case 'empty': {
        const v = a[0];
        if (v === null || v === '') return true;
        if (Array.isArray(v)) return v.length === 0;
        if (isObject(v)) return Object.keys(v).length === 0;
        return false;
      }
      case 'toLower':
        return str(0).toLowerCase();
      case 'toUpper':
        return str(0).toUpperCase();
      case 'uniqueString':
        return createHash('sha256')
          .update(a.map(String).join('|'))
          .digest('hex')
          .replace(/[^a-z0-9]/g, '')
          .slice(0, 13);
      case 'guid':
        return fakeGuid(...a.map(String));
      case 'take': {
        const v = a[0];
        if (typeof v === 'string' || Array.isArray(v)) return v.slice(0, num(1));
        throw new Error('take of a non-sequence');
      }
      case 'string':
        return typeof a[0] === 'string' ? a[0] : JSON.stringify(a[0]);
      case 'int':
        return Math.trunc(Number(a[0]));
      case 'min':
        return Math.min(...a.map((_, i) => num(i)));
      case 'max':
        return Math.max(...a.map((_, i) => num(i)));
      case 'split':
        return str(0).split(str(1));
      case 'last': {
        const v = a[0];
        if (Array.isArray(v)) return v.at(-1) ?? null;
        throw new Error('last of a non-array');
      }
      case 'length': {
        const v = a[0];
        if (typeof v === 'string' || Array.isArray(v)) return v.length;
        if (isObject(v)) return Object.keys(v).length;
        throw new Error('length of a scalar');
      }
      case 'subscription':
        return {
          id: `/subscriptions/${RUNTIME.subscriptionId}`,
          subscriptionId: RUNTIME.subscriptionId,
        };
      case 'tenant':
        return { tenantId: RUNTIME.tenantId };
      case 'resourceGroup':
        return {
          name: a.length ? str(a.length - 1) : 'rg',
          subscriptionId: RUNTIME.subscriptionId,
        };
      case 'subscriptionResourceId':
        return `/subscriptions/${RUNTIME.subscriptionId}/providers/${str(0)}/${str(1)}`;
      case 'loadJsonContent':
        return JSON.parse(readFileSync(join(dirname(this.file), str(0)), 'utf8')) as Value;
      default:
        throw new Error(`${this.file}: unsupported function ${fn}`);
    }
  }
}

function binary(op: string, left: Value, right: () => Value): Value {
  switch (op) {
    case '&&':
      return left === true && right() === true;
    case '||':
      return left === true || right() === true;
    case '==':
      return JSON.stringify(left) === JSON.stringify(right());
    case '!=':
      return JSON.stringify(left) !== JSON.stringify(right());
  }
  const r = right();
  if (typeof left !== 'number' || typeof r !== 'number')
    throw new Error(`operator ${op} on non-numbers: ${JSON.stringify(left)}, ${JSON.stringify(r)}`);
  switch (op) {
    case '+':
      return left + r;
    case '-':
      return left - r;
    case '*':
      return left * r;
    case '/':
      return Math.trunc(left / r); // Bicep divides integers
    case '%':
      return left % r;
    case '<':
      return left < r;
    case '<=':
      return left <= r;
    case '>':
      return left > r;
    case '>=':
      return left >= r;
    default:
      throw new Error(`unsupported operator ${op}`);
  }
}

const ESCAPES: Record<string, string> = {
  "\\'": "'",
  '\\\\': '\\',
  '\\n': '\n',
  '\\r': '\r',
  '\\t': '\t',
  '\\$': '$',
};

function stringValue(n: SyntaxNode, ev: (x: SyntaxNode) => Value): string {
  let out = '';
  for (const c of n.namedChildren) {
    if (c.type === 'string_content') out += c.text;
    else if (c.type === 'escape_sequence') {
      const e = ESCAPES[c.text];
      if (e === undefined) throw new Error(`unsupported escape ${c.text}`);
      out += e;
    } else if (c.type === 'interpolation') {
      const v = ev(named(c)[0]!);
      out += typeof v === 'string' ? v : JSON.stringify(v);
    } else throw new Error(`unsupported string part ${c.type}`);
  }
  return out;
}

function stringLiteral(n: SyntaxNode): string {
  if (n.type !== 'string' || n.namedChildren.some((c) => c.type === 'interpolation'))
    throw new Error(`expected a string literal: ${n.text}`);
  return stringValue(n, () => null);
}
