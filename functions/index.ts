/**
 * The Functions app entry point (package.json "main"): settings are read once, the
 * dependencies built once, and every function in the registry registered with the
 * host. Handlers live in their own modules, so tests import them without this file.
 */
import { app } from '@azure/functions';
import { loadSettings } from '../shared/build/settings';
import { createDeps } from './lib/deps';
import { registrations } from './registry';

const CONNECTION = 'AzureWebJobsStorage';

for (const fn of registrations(createDeps(loadSettings()))) {
  if (fn.kind === 'queue') {
    app.storageQueue(fn.name, {
      queueName: fn.queueName,
      connection: CONNECTION,
      handler: fn.handler,
    });
  } else if (fn.kind === 'http') {
    app.http(fn.name, {
      route: fn.route,
      methods: fn.methods,
      authLevel: fn.authLevel,
      handler: fn.handler,
    });
  } else {
    app.timer(fn.name, { schedule: fn.schedule, handler: fn.handler });
  }
}
