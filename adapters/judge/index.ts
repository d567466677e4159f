/**
 * The one place that turns judge settings into a Judge with its real clients (OpenAI
 * or Azure OpenAI, a verdict cache, replay, a panel), for the CLI and the functions alike.
 */
export * from './factory';
