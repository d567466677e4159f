// The floor: read a JSONL file and JSON.parse every line, nothing else. It splits
// bytes the way the fastest reader we know does (the one adapters/files/lines.ts uses),
// so the ratio measures the balancer's own work, not a slower reader.
import { createReadStream } from 'node:fs';

const path = process.argv[2];
let rows = 0;
let checksum = 0;
let pending = null;
const parse = (buf, start, end) => {
  if (end <= start) return;
  const row = JSON.parse(buf.toString('utf8', start, end));
  rows++;
  checksum += row.turnIndex ?? 0;
};
createReadStream(path, { highWaterMark: 1 << 20 })
  .on('data', (chunk) => {
    let start = 0;
    if (pending) {
      const nl = chunk.indexOf(10);
      if (nl === -1) {
        pending = Buffer.concat([pending, chunk]);
        return;
      }
      const joined = Buffer.concat([pending, chunk.subarray(0, nl)]);
      pending = null;
      parse(joined, 0, joined.length);
      start = nl + 1;
    }
    for (let nl = chunk.indexOf(10, start); nl !== -1; nl = chunk.indexOf(10, start)) {
      parse(chunk, start, nl);
      start = nl + 1;
    }
    if (start < chunk.length) pending = chunk.subarray(start);
  })
  .on('end', () => {
    if (pending) parse(pending, 0, pending.length);
    process.stdout.write(`${rows} rows parsed (checksum ${checksum})\n`);
  });
