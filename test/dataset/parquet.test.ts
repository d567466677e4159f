import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  ParquetFileError,
  ParquetTableWriter,
  parquetInfo,
  readParquetRowGroups,
} from '../../adapters/files/parquet';
import type { TableColumn } from '../../shared/dataset/index';

const dir = mkdtempSync(join(tmpdir(), 'sftb-parquet-'));
const columns: TableColumn[] = [
  { name: 'id', type: 'string', nullable: false },
  { name: 'label', type: 'int32', nullable: false },
  { name: 'weight', type: 'double', nullable: false },
  { name: 'up', type: 'boolean', nullable: false },
  { name: 'dup', type: 'string', nullable: true },
  { name: 'tags', type: 'string_list', nullable: false },
];
const row = (i: number) => ({
  id: `s-${i} 😀 naïve 日本`,
  label: i % 2,
  weight: 1.25 * i,
  up: i % 3 === 0,
  dup: i % 4 === 0 ? `s-${i - 1}` : null,
  tags: Array.from({ length: i % 3 }, (_, j) => `t${j}🚀`),
});

async function readAll(path: string) {
  const out: Record<string, unknown>[] = [];
  for await (const group of readParquetRowGroups(path)) out.push(...group);
  return out;
}

describe('ParquetTableWriter', () => {
  it('round-trips rows: count, columns, types, UTF-8 with emoji, nulls and lists', async () => {
    const path = join(dir, 'a.parquet');
    const w = new ParquetTableWriter(path, columns);
    for (let i = 0; i < 25; i++) w.write(row(i));
    const digest = w.close();
    expect(digest.lines).toBe(25);
    expect(digest.bytes).toBe(readFileSync(path).length);
    const rows = await readAll(path);
    expect(rows).toEqual(Array.from({ length: 25 }, (_, i) => row(i)));
    const { metadata } = await parquetInfo(path);
    const leaf = (n: string) => metadata.schema.find((s) => s.name === n)!;
    expect(leaf('id')).toMatchObject({
      type: 'BYTE_ARRAY',
      converted_type: 'UTF8',
      repetition_type: 'REQUIRED',
    });
    expect(leaf('label')).toMatchObject({ type: 'INT32' });
    expect(leaf('weight')).toMatchObject({ type: 'DOUBLE' });
    expect(leaf('up')).toMatchObject({ type: 'BOOLEAN' });
    expect(leaf('dup')).toMatchObject({ repetition_type: 'OPTIONAL' });
    expect(leaf('tags')).toMatchObject({ converted_type: 'LIST' });
    expect(existsSync(`${path}.tmp`)).toBe(false);
  });

  it('bounds row groups by rows and by bytes, and reads them back one at a time', async () => {
    const byRows = join(dir, 'rows.parquet');
    const w = new ParquetTableWriter(byRows, columns, { rowGroupRows: 10 });
    for (let i = 0; i < 35; i++) w.write(row(i));
    expect(w.close().rowGroups).toBe(4);
    expect((await parquetInfo(byRows)).rowGroups).toEqual([10, 10, 10, 5]);
    const sizes: number[] = [];
    for await (const g of readParquetRowGroups(byRows)) sizes.push(g.length);
    expect(sizes).toEqual([10, 10, 10, 5]);

    const byBytes = join(dir, 'bytes.parquet');
    const wb = new ParquetTableWriter(byBytes, columns, { rowGroupBytes: 1000 });
    for (let i = 0; i < 20; i++) wb.write({ ...row(i), id: 'x'.repeat(300) });
    // About 330 bytes a row: a group closes at its third row (~1000 bytes), whatever the row limit.
    wb.close();
    const groups = (await parquetInfo(byBytes)).rowGroups;
    expect(groups.reduce((a, b) => a + b, 0)).toBe(20);
    expect(Math.max(...groups)).toBe(3);
  });

  it('writes an empty split as a file with the schema and no rows', async () => {
    const path = join(dir, 'empty.parquet');
    new ParquetTableWriter(path, columns).close();
    expect((await parquetInfo(path)).rows).toBe(0);
    expect(await readAll(path)).toEqual([]);
  });

  it('rejects a value that does not fit its column, naming row and column', () => {
    const w = new ParquetTableWriter(join(dir, 'bad.parquet'), columns);
    w.write(row(1));
    expect(() => w.write({ ...row(2), label: 2 ** 40 })).toThrow(
      /row 2: column "label" is not a 32-bit integer/,
    );
    expect(() => w.write({ ...row(2), id: null })).toThrow(/column "id" is missing/);
    w.abort();
    expect(readdirSync(dir).filter((f) => f.startsWith('bad.parquet'))).toEqual([]);
  });

  it('a truncated file is a ParquetFileError naming it', async () => {
    const path = join(dir, 'a.parquet');
    const cut = join(dir, 'cut.parquet');
    const bytes = readFileSync(path);
    writeFileSync(cut, bytes.subarray(0, bytes.length - 20));
    await expect(parquetInfo(cut)).rejects.toThrow(ParquetFileError);
    await expect(parquetInfo(cut)).rejects.toThrow(cut);
  });
});
