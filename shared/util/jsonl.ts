/** JSON Lines text: one JSON value per line, each line ending in a newline ('' for none). */
export function toJsonl(items: readonly unknown[]): string {
  const parts: string[] = [];
  for (const x of items) parts.push(JSON.stringify(x) + '\n');
  return parts.join('');
}
