#!/usr/bin/env node
'use strict';
// Thin launcher: the CLI is compiled to dist/ by `npm run build`.
const path = require('node:path');
const fs = require('node:fs');
const entry = path.join(__dirname, '..', 'dist', 'cli', 'main.js');
if (!fs.existsSync(entry)) {
  process.stderr.write('sft-balancer: not built yet; run `npm run build` first\n');
  process.exit(2);
}
// `balance` scans on a worker thread: start it now, loading its modules while this
// thread loads the command's (it is handed its task later; unused, it holds nothing up).
if (process.argv[2] === 'balance') {
  require(path.join(__dirname, '..', 'dist', 'adapters', 'files', 'worker-script.js')).prestart();
}
// Should the event loop run dry while the command still awaits something (a bug), Node
// would exit 0 with the work undone: say so, and fail.
let finished = false;
process.on('exit', (code) => {
  if (finished || code !== 0) return;
  process.stderr.write(
    'sft-balancer: internal error: the process ended before the command finished\n',
  );
  process.exitCode = 70;
});
require(entry)
  .main(process.argv.slice(2))
  .then((code) => {
    finished = true;
    process.exitCode = code;
  });
