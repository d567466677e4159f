/** UTF-8 sizes without encoding the text. */

/**
 * The UTF-8 length of a text: an upper bound on its token count under any byte-level
 * BPE (o200k_base, cl100k_base), since every token stands for at least one byte.
 */
export function utf8Length(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}
