/**
 * The local host: a real Azurite started as a child process, and a stand-in for the
 * Functions host's queue trigger, so that `run` works on a machine without Core Tools.
 * (azurite-watchdog.cjs is a preload script, not a module.)
 */
export * from './azurite';
export * from './queue-host';
