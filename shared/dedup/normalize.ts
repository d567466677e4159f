/**
 * Text normalisation before shingling: two prompts that differ only in case, Unicode
 * form, spacing or punctuation are the same prompt re-sent, so they must give the same
 * shingles. Digits are kept: "line 12" and "line 13" stay distinct texts whose
 * similarity the detector then measures (they are near-duplicates, not duplicates).
 */

// Punctuation and symbols (Unicode categories P and S) become a space rather than
// vanishing, so "foo.ts" reads "foo ts" and never "foots".
const PUNCTUATION = /[\p{P}\p{S}]+/gu;
const SPACE = /\s+/gu;

/** NFKC, lower case, punctuation and symbols to a space, runs of white space to one space, trimmed. */
export function normalizeText(text: string): string {
  return text.normalize('NFKC').toLowerCase().replace(PUNCTUATION, ' ').replace(SPACE, ' ').trim();
}
