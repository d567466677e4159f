'use strict';
// Preloaded into the Azurite child (`node --require <this file> azurite.js`) by
// ./azurite.ts: ends the child when its stdin closes, i.e. when the process that
// started it is gone (a SIGKILLed runner would otherwise leave Azurite running).
// Shipped in the package (copied to dist/ by the build through allowJs) and required
// by its resolved path beside the module, never written anywhere at run time: a file
// in a shared temp directory could be replaced by another user before it is required.
process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.stdin.resume();
// Unreferenced: the pipe alone must not keep Azurite alive after it is told to stop.
if (typeof process.stdin.unref === 'function') process.stdin.unref();
