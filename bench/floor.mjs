// The floor: read a JSONL file and JSON.parse every line, nothing else.
import { createReadStream } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';

const path = process.argv[2];
const decoder = new StringDecoder('utf8');
let carry = '';
let n = 0;
let checksum = 0;
const stream = createReadStream(path, { highWaterMark: 1 << 20 });
stream.on('data', (chunk) => {
  const text = carry + decoder.write(chunk);
  let start = 0;
  for (let nl = text.indexOf('\n'); nl !== -1; nl = text.indexOf('\n', start)) {
    const line = text.slice(start, nl);
    start = nl + 1;
    if (line.length === 0) continue;
    const row = JSON.parse(line);
    n++;
    checksum += row.turnIndex ?? 0;
  }
  carry = text.slice(start);
});
stream.on('end', () => {
  if (carry.trim()) (JSON.parse(carry), n++);
  process.stdout.write(`${n} rows parsed (checksum ${checksum})\n`);
});
