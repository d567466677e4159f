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
// In ASCII, P ∪ S is exactly the printable characters that are neither letters,
// digits nor the space; NFKC leaves ASCII alone. Non-unicode regexes are much faster.
const NON_ASCII = /[^\x00-\x7f]/;
const ASCII_PUNCTUATION = /[!-/:-@[-`{-~]+/g;
const ASCII_SPACE = /\s+/g;

/** The definition: NFKC, lower case, P and S to a space, white-space runs to one space, trimmed. */
export function normalizeTextUnicode(text: string): string {
  return text.normalize('NFKC').toLowerCase().replace(PUNCTUATION, ' ').replace(SPACE, ' ').trim();
}

/** normalizeTextUnicode, with a fast path for ASCII text (the common case) giving the same result. */
export function normalizeText(text: string): string {
  if (NON_ASCII.test(text)) return normalizeTextUnicode(text);
  return text.toLowerCase().replace(ASCII_PUNCTUATION, ' ').replace(ASCII_SPACE, ' ').trim();
}
