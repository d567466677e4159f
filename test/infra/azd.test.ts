/**
 * The files around the templates: azd's parameter file and azure.yaml, .funcignore
 * (what the package keeps), and local.settings.json.example (Core Tools + Azurite).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadSettings } from '../../shared/build/settings';
import { deploy } from './deployment';

const ROOT = join(__dirname, '..', '..');
const read = (p: string) => readFileSync(join(ROOT, p), 'utf8');

describe('infra/main.parameters.json (azd)', () => {
  const file = JSON.parse(read('infra/main.parameters.json')) as {
    parameters: Record<string, { value: string }>;
  };
  const main = deploy({}).main;
  const refs = Object.entries(file.parameters).map(([param, { value }]) => {
    const m = /^\$\{([A-Z_]+)(?:=(.*))?\}$/.exec(value);
    if (!m) throw new Error(`${param}: expected \${ENV} or \${ENV=default}, got ${value}`);
    return { param, env: m[1]!, fallback: m[2] };
  });

  it('passes only parameters main.bicep declares, and every one without a default', () => {
    for (const r of refs) expect(main.params.has(r.param), r.param).toBe(true);
    const required = [...main.paramDefaults].filter(([, d]) => !d).map(([p]) => p);
    expect(required.length).toBeGreaterThan(0);
    for (const p of required) expect(file.parameters, p).toHaveProperty(p);
  });

  it('reads no azd variable that main.bicep writes back as an output', () => {
    // azd stores outputs in the environment: an input of the same name would flip the
    // next provision (e.g. AZURE_OPENAI_ENDPOINT would turn "create" into "existing").
    // An output that is the parameter itself (AZURE_LOCATION) round-trips unchanged.
    const looping = refs.filter(
      (r) => main.outputs.has(r.env) && main.output(r.env) !== main.value(r.param),
    );
    expect(looping.map((r) => r.env)).toEqual([]);
    expect(main.output('AZURE_LOCATION')).toBe(main.value('location'));
  });

  it('has fallbacks equal to the Bicep defaults and inside their @allowed / @minValue', () => {
    for (const r of refs.filter((x) => x.fallback !== undefined)) {
      const def = main.value(r.param);
      expect(typeof def === 'number' ? String(def) : def, r.param).toBe(r.fallback);
      const d = main.decorators(r.param);
      if (Array.isArray(d.allowed)) expect(d.allowed, r.param).toContain(def);
      if (typeof d.minValue === 'number') expect(def).toBeGreaterThanOrEqual(d.minValue);
    }
  });
});

describe('azure.yaml', () => {
  const yaml = read('azure.yaml');

  it('deploys this folder as a function app from infra/main.bicep', () => {
    expect(yaml).toMatch(/^infra:\n {2}provider: bicep\n {2}path: infra\n {2}module: main$/m);
    expect(yaml).toMatch(/^services:\n {2}api:\n {4}project: \.\n/m);
    expect(yaml).toMatch(/^ {4}host: function$/m);
    expect(yaml).toMatch(/^ {4}language: ts$/m);
  });

  it('names the service the function app is tagged with', () => {
    const api = deploy({}).api;
    const app = api.body(api.resourcesOfType('Microsoft.Web/sites')[0]!);
    expect(app.tags).toMatchObject({ 'azd-service-name': 'api' });
  });
});

describe('.funcignore', () => {
  const patterns = read('.funcignore')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  // gitignore-style: a pattern without a slash matches any path segment.
  const glob = (p: string) =>
    new RegExp(`^${p.replace(/[.+^$()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*')}$`);
  const ignored = (path: string) =>
    patterns.some((p) => path.split('/').some((seg) => glob(p).test(seg)));

  it.each([
    'package.json',
    'package-lock.json',
    'host.json',
    'tsconfig.json',
    'tsconfig.build.json',
    'dist/functions/index.js',
    'functions/index.ts',
    'shared/settings.ts',
    'adapters/storage.ts',
    'cli/main.ts',
    'queries/sft_session_router_first_turns.kql',
  ])('keeps %s', (path) => expect(ignored(path)).toBe(false));

  it.each([
    'node_modules/openai/index.js',
    'local.settings.json',
    'test/infra/bicep.ts',
    '.git/config',
    '.azure/dev/.env',
    'infra/main.bicep',
    'dist/functions/index.js.map',
  ])('leaves out %s', (path) => expect(ignored(path)).toBe(true));
});

describe('local.settings.json.example', () => {
  const example = JSON.parse(read('local.settings.json.example')) as {
    Values: Record<string, string>;
  };

  it('runs under Core Tools on Azurite with the names the Bicep deploys', () => {
    expect(example.Values.FUNCTIONS_WORKER_RUNTIME).toBe('node');
    const local = loadSettings(example.Values);
    expect(local.storage).toEqual({
      kind: 'connectionString',
      connectionString: 'UseDevelopmentStorage=true',
    });
    const deployed = loadSettings(deploy({}).appSettings);
    expect(local.queues).toEqual(deployed.queues);
    expect(local.container).toBe(deployed.container);
    expect(example.Values.JUDGE_CACHE_CONTAINER).toBe(deploy({}).appSettings.JUDGE_CACHE_CONTAINER);
  });

  it('holds no key', () => {
    expect(JSON.stringify(example)).not.toMatch(/AccountKey=|SharedAccessKey|API_KEY|sk-/);
  });

  it('is ignored by git (the real local.settings.json may hold secrets)', () => {
    expect(read('.gitignore').split('\n')).toContain('local.settings.json');
  });
});
