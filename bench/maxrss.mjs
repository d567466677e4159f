// Preloaded by bench/memory.mjs (node --import): appends this process's peak RSS to the
// file named by SFT_BENCH_MAXRSS when it exits. Forked runner instances inherit it.
import { appendFileSync } from 'node:fs';

const out = process.env.SFT_BENCH_MAXRSS;
if (out) {
  process.on('exit', () => {
    const u = process.resourceUsage();
    const role = process.send ? 'worker' : 'main';
    const cpuSeconds = (u.userCPUTime + u.systemCPUTime) / 1e6;
    appendFileSync(
      out,
      `${JSON.stringify({ pid: process.pid, role, maxRssKb: u.maxRSS, cpuSeconds })}\n`,
    );
  });
}
