/**
 * A small YAML writer for the dataset card's front matter: block mappings and
 * sequences, every string double-quoted (a JSON string is a valid YAML double-quoted
 * scalar), so no value can change type or break the document.
 */
export type YamlValue =
  string | number | boolean | null | YamlValue[] | { [key: string]: YamlValue };

const KEY = /^[A-Za-z_][A-Za-z0-9_-]*$/;
const key = (k: string) => (KEY.test(k) ? k : JSON.stringify(k));

function scalar(v: string | number | boolean | null): string {
  if (v === null) return 'null';
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new RangeError(`YAML: not a finite number: ${v}`);
    return String(v);
  }
  return typeof v === 'boolean' ? String(v) : JSON.stringify(v);
}

const isBlock = (v: YamlValue): v is YamlValue[] | { [key: string]: YamlValue } =>
  typeof v === 'object' &&
  v !== null &&
  (Array.isArray(v) ? v.length > 0 : Object.keys(v).length > 0);

function emit(v: YamlValue, indent: string, out: string[]): void {
  if (Array.isArray(v)) {
    for (const item of v) {
      if (isBlock(item) && !Array.isArray(item)) {
        const inner: string[] = [];
        emit(item, indent + '  ', inner);
        // The first key of a mapping sits on the dash's line.
        out.push(`${indent}- ${inner[0]!.slice(indent.length + 2)}`, ...inner.slice(1));
      } else if (isBlock(item)) {
        out.push(`${indent}-`);
        emit(item, indent + '  ', out);
      } else out.push(`${indent}- ${inline(item)}`);
    }
    return;
  }
  if (v !== null && typeof v === 'object') {
    for (const [k, val] of Object.entries(v)) {
      if (isBlock(val)) {
        out.push(`${indent}${key(k)}:`);
        emit(val, indent + '  ', out);
      } else out.push(`${indent}${key(k)}: ${inline(val)}`);
    }
    return;
  }
  out.push(indent + scalar(v));
}

const inline = (v: YamlValue): string =>
  Array.isArray(v) ? '[]' : v !== null && typeof v === 'object' ? '{}' : scalar(v);

/** The YAML text of a mapping, one line per scalar, ending with a newline. */
export function toYaml(value: { [key: string]: YamlValue }): string {
  const out: string[] = [];
  emit(value, '', out);
  return out.join('\n') + '\n';
}
