/**
 * One more instance of the local runner (`run --instances N` forks N-1 of these): it
 * serves the same queue functions from the same storage, as another Functions
 * instance would when the app scales out. It stops when told to, and at once when
 * its parent goes away (messages it held reappear when their lease lapses).
 */
import { LocalQueueHost } from '../adapters/local/queue-host';
import { readQueueHostConfig } from '../adapters/storage/host-config';
import { createDeps } from '../functions/lib/deps';
import { registrations, type QueueFunction } from '../functions/registry';
import { loadSettings } from '../shared/build/settings';

const deps = createDeps(loadSettings());
const host = new LocalQueueHost({
  service: deps.clients.queues,
  functions: registrations(deps).filter((r): r is QueueFunction => r.kind === 'queue'),
  config: readQueueHostConfig(),
  leaseSeconds: Number(process.env.SFT_RUNNER_LEASE_SECONDS ?? 30) || 30,
  log: (level, fn, text) => {
    if (level === 'error' || level === 'warning')
      process.stderr.write(`[instance ${process.pid}] [${fn}] ${text}\n`);
  },
});
host.start();
process.on('disconnect', () => process.exit(0));
process.on('message', (m) => {
  if (m === 'stop') void host.stop().then(() => process.exit(0));
});
