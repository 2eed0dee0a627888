/**
 * Making peer text safe to show, and building byte buffers without waste.
 *
 * Text from a peer may hold anything: invalid UTF-8, or control characters that
 * would drive another person's terminal (ESC sequences can move the cursor,
 * rewrite the screen or set the window title). {@linkcode appendSanitized}
 * copies a line while turning every such byte harmless, in one pass over the
 * bytes, so the relay never has to decode a line into a string.
 *
 * @module
 */

const TAB = 0x09;
const SPACE = 0x20;
const CARET = 0x5e; // "^"

/**
 * A growable byte buffer, reused between messages so the hot path does not
 * allocate per line.
 *
 * @example
 * ```ts
 * import { ByteBuilder } from "./text.ts";
 * import assert from "node:assert/strict";
 *
 * const b = new ByteBuilder();
 * b.appendText("<ana> ");
 * const text = new TextEncoder().encode("hi\x1b[2J");
 * b.appendSanitized(text, 0, text.length);
 * b.appendByte(0x0a);
 * assert.equal(new TextDecoder().decode(b.take()), "<ana> hi^[[2J\n");
 * assert.equal(b.length, 0);
 * ```
 */
export class ByteBuilder {
  /** The storage; only `bytes[0..length)` is meaningful. */
  bytes: Uint8Array;
  /** How many bytes are in use. */
  length = 0;

  /** Makes an empty builder with room for `capacity` bytes to start with. */
  constructor(capacity = 4096) {
    this.bytes = new Uint8Array(capacity);
  }

  /** Makes sure `extra` more bytes fit without another check. */
  reserve(extra: number): void {
    const needed = this.length + extra;
    if (needed <= this.bytes.length) return;
    const grown = new Uint8Array(Math.max(needed, this.bytes.length * 2));
    grown.set(this.bytes.subarray(0, this.length));
    this.bytes = grown;
  }

  /** Appends one byte. */
  appendByte(byte: number): void {
    this.reserve(1);
    this.bytes[this.length++] = byte;
  }

  /** Appends `src[start..end)` as it is. */
  append(src: Uint8Array, start = 0, end = src.length): void {
    const length = end - start;
    this.reserve(length);
    if (length <= 32) {
      // A name, a time stamp: copying by hand beats allocating a view to copy from.
      const bytes = this.bytes;
      for (let i = start, o = this.length; i < end; i++, o++) bytes[o] = src[i];
    } else {
      this.bytes.set(
        start === 0 && end === src.length ? src : src.subarray(start, end),
        this.length,
      );
    }
    this.length += length;
  }

  /** Appends a string as UTF-8 (no sanitizing: for text the program itself made). */
  appendText(text: string): void {
    this.reserve(text.length * 3);
    this.length += encoder.encodeInto(text, this.bytes.subarray(this.length)).written;
  }

  /** Appends `src[start..end)` made safe to display; see {@linkcode sanitize}. */
  appendSanitized(src: Uint8Array, start: number, end: number): void {
    // Worst case: every byte becomes U+FFFD (3 bytes).
    this.reserve((end - start) * 3);
    this.length = sanitizeInto(src, start, end, this.bytes, this.length);
  }

  /** Appends lines `first..count-1` of `text`, each after `prefix`; see {@linkcode prefixLines}. */
  appendPrefixedLines(
    prefix: Uint8Array,
    text: Uint8Array,
    ends: readonly number[],
    first: number,
    count: number,
  ): void {
    const begin = first === 0 ? 0 : ends[first - 1] + 1;
    this.reserve(ends[count - 1] + 1 - begin + (count - first) * prefix.length);
    this.length = prefixLines(this.bytes, this.length, prefix, text, ends, first, count);
  }

  /** A copy of the content, which then is cleared. The copy can be shared freely. */
  take(): Uint8Array {
    const out = this.bytes.slice(0, this.length);
    this.length = 0;
    return out;
  }

  /** Drops the content, keeping the storage. */
  clear(): void {
    this.length = 0;
  }
}

const encoder = new TextEncoder();

/**
 * Copies lines `first` to `count - 1` of `text` into `out` from `at`, each
 * after `prefix`, and returns where they end. Line `i` ends at `ends[i]`, where
 * its newline is, and the next starts after it (the layout of a relayed batch);
 * the newlines are copied too. `out` must have room for the lines and a prefix
 * each. The text is copied in one go to the end of that room, then each line
 * moved down to its place after its prefix (never onto text not yet moved):
 * a copy within one buffer makes no view, and took a third less time than
 * copying each line from a view of its own.
 *
 * @example
 * ```ts
 * import { prefixLines } from "./text.ts";
 * import assert from "node:assert/strict";
 *
 * const text = new TextEncoder().encode("uno\ndos\ntres\n");
 * const out = new Uint8Array(32);
 * const end = prefixLines(out, 0, new TextEncoder().encode("<ana> "), text, [3, 7, 12], 1, 3);
 * assert.equal(new TextDecoder().decode(out.subarray(0, end)), "<ana> dos\n<ana> tres\n");
 * ```
 */
export function prefixLines(
  out: Uint8Array,
  at: number,
  prefix: Uint8Array,
  text: Uint8Array,
  ends: readonly number[],
  first: number,
  count: number,
): number {
  if (first >= count) return at;
  const begin = first === 0 ? 0 : ends[first - 1] + 1;
  const gaps = (count - first) * prefix.length;
  out.set(text.subarray(begin, ends[count - 1] + 1), at + gaps);
  const shift = at + gaps - begin; // text[k] is now at out[k + shift]
  let start = begin + shift;
  for (let i = first; i < count; i++) {
    // Names and chat lines are short: copying by hand beats a call.
    for (let k = 0; k < prefix.length; k++) out[at++] = prefix[k];
    const end = ends[i] + 1 + shift;
    if (end - start <= 16) {
      for (let k = start; k < end; k++) out[at++] = out[k];
    } else {
      out.copyWithin(at, start, end);
      at += end - start;
    }
    start = end;
  }
  return at;
}

/**
 * The most blanks kept in a row. A longer run is cut to this, so that nobody
 * can pad a line with spaces until the rest of it wraps onto a row of its own,
 * where it would read as a line from someone else (`<server> …`).
 */
export const MAX_BLANKS = 3;

/**
 * Returns `bytes` as valid UTF-8 that cannot drive a terminal or fake its layout:
 * - C0 controls other than TAB become caret notation (`ESC` → `^[`, `BEL` → `^G`),
 *   and DEL becomes `^?`, as `cat -v` and most shells show them;
 * - C1 controls (U+0080–U+009F, which some terminals obey like ESC sequences)
 *   become U+FFFD, as does every invalid UTF-8 sequence (one U+FFFD per maximal
 *   invalid subpart, exactly as `TextDecoder` replaces them);
 * - TAB becomes a space (its width depends on the column it lands in, so it
 *   never looks the same on two screens), and a run of blanks (spaces, and
 *   Unicode spaces such as no-break, ideographic, braille blank or Hangul
 *   filler) keeps only its first {@linkcode MAX_BLANKS}.
 *
 * @example
 * ```ts
 * import { sanitize } from "./text.ts";
 * import assert from "node:assert/strict";
 *
 * const out = sanitize(new Uint8Array([0x61, 0x1b, 0x5b, 0x41, 0xff, 0x09, 0x62]));
 * assert.equal(new TextDecoder().decode(out), "a^[[A\uFFFD b");
 * const padded = new TextEncoder().encode("hi" + " ".repeat(70) + "<server> hola");
 * assert.equal(new TextDecoder().decode(sanitize(padded)), "hi   <server> hola");
 * ```
 */
export function sanitize(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(bytes.length * 3);
  return out.subarray(0, sanitizeInto(bytes, 0, bytes.length, out, 0));
}

/**
 * Like {@linkcode sanitize}, for strings: for text that arrived as a string.
 *
 * @example
 * ```ts
 * import { sanitizeText } from "./text.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(sanitizeText("ñ\x07\u009b"), "ñ^G\uFFFD");
 * assert.equal(sanitizeText("a\t\t\t\t\tb"), "a   b");
 * ```
 */
export function sanitizeText(text: string): string {
  return text
    // deno-lint-ignore no-control-regex
    .replace(/[\x00-\x1f\x7f\x80-\x9f]/g, (c) => {
      const code = c.charCodeAt(0);
      if (code === TAB) return " ";
      if (code >= 0x80) return "\uFFFD";
      return code === 0x7f ? "^?" : "^" + String.fromCharCode(code + 0x40);
    })
    .replace(BLANK_RUN, (run) => run.slice(0, MAX_BLANKS));
}

/**
 * Runs of more than {@linkcode MAX_BLANKS} blanks (tabs are spaces by then),
 * with the same blanks as {@linkcode isBlank}; all of them are one UTF-16 unit.
 */
const BLANK_RUN =
  /[ \u00a0\u1680\u2000-\u200a\u202f\u205f\u3000\u2800\u3164\uffa0\u115f\u1160]{4,}/g;

/** Whether the code point shows as blank space (ASCII space aside). */
function isBlank(code: number): boolean {
  return code === 0xa0 || code === 0x1680 || (code >= 0x2000 && code <= 0x200a) ||
    code === 0x202f || code === 0x205f || code === 0x3000 || code === 0x2800 ||
    code === 0x3164 || code === 0xffa0 || code === 0x115f || code === 0x1160;
}

/**
 * Writes the sanitized form of `src[start..end)` into `dst` from `at` and returns
 * the end position. `dst` must have room for `3 * (end - start)` bytes.
 *
 * This is the WHATWG UTF-8 decoder's validation, run over bytes and copying as
 * it goes: printable ASCII, the common case, costs one comparison per byte.
 */
function sanitizeInto(
  src: Uint8Array,
  start: number,
  end: number,
  dst: Uint8Array,
  at: number,
): number {
  let i = start;
  let o = at;
  // Blanks in a row so far, and where the output stood after the last one:
  // anything written since means a new run. (Kept out of the printable-ASCII
  // path, which is most bytes and must stay one comparison and one store.)
  let blanks = 0;
  let runEnd = -1;
  while (i < end) {
    let b = src[i];
    // Printable ASCII, most bytes: a loop of its own (measured: the shared
    // loop with the blank checks beside it ran half as fast again).
    while (b > SPACE && b < 0x7f) {
      dst[o++] = b;
      if (++i === end) return o;
      b = src[i];
    }
    if (b === SPACE || b === TAB) {
      if (o !== runEnd) blanks = 0;
      if (++blanks <= MAX_BLANKS) dst[o++] = SPACE;
      runEnd = o;
      i++;
      continue;
    }
    if (b < 0x80) {
      dst[o++] = CARET;
      dst[o++] = b === 0x7f ? 0x3f : b + 0x40;
      i++;
      continue;
    }
    // A multi-byte sequence: how many continuation bytes, and the allowed range of
    // the first one (which rules out overlong forms, surrogates and > U+10FFFF).
    let needed: number;
    let lower = 0x80;
    let upper = 0xbf;
    if (b >= 0xc2 && b <= 0xdf) {
      needed = 1;
    } else if (b >= 0xe0 && b <= 0xef) {
      needed = 2;
      if (b === 0xe0) lower = 0xa0;
      else if (b === 0xed) upper = 0x9f;
    } else if (b >= 0xf0 && b <= 0xf4) {
      needed = 3;
      if (b === 0xf0) lower = 0x90;
      else if (b === 0xf4) upper = 0x8f;
    } else {
      o = replacement(dst, o);
      i++;
      continue;
    }
    let j = i + 1;
    let valid = true;
    for (let k = 0; k < needed; k++, j++) {
      const c = j < end ? src[j] : -1;
      if (c < lower || c > upper) {
        valid = false;
        break;
      }
      lower = 0x80;
      upper = 0xbf;
    }
    if (!valid) {
      // The maximal subpart [i, j) becomes one U+FFFD; the byte at j is looked at again.
      o = replacement(dst, o);
      i = j;
      continue;
    }
    if (b === 0xc2 && src[i + 1] < 0xa0) {
      o = replacement(dst, o); // C1 control U+0080..U+009F
    } else if (
      (b === 0xc2 || b === 0xe1 || b === 0xe2 || b === 0xe3 || b === 0xef) &&
      isBlank(codePoint(src, i, needed))
    ) {
      if (o !== runEnd) blanks = 0;
      if (++blanks <= MAX_BLANKS) { for (let k = i; k < j; k++) dst[o++] = src[k]; }
      runEnd = o;
    } else {
      for (let k = i; k < j; k++) dst[o++] = src[k];
    }
    i = j;
  }
  return o;
}

/** The code point of the valid sequence of `1 + needed` bytes at `src[i]`. */
function codePoint(src: Uint8Array, i: number, needed: number): number {
  let code = src[i] & (needed === 1 ? 0x1f : needed === 2 ? 0x0f : 0x07);
  for (let k = 1; k <= needed; k++) code = (code << 6) | (src[i + k] & 0x3f);
  return code;
}

function replacement(dst: Uint8Array, o: number): number {
  dst[o] = 0xef;
  dst[o + 1] = 0xbf;
  dst[o + 2] = 0xbd;
  return o + 3;
}

/**
 * Splits off the first word: `"msg ana hola"` → `["msg", "ana hola"]`. The rest
 * is trimmed; both are `""` when absent. How command lines are read, by the
 * server for clients and for its operator alike.
 *
 * @example
 * ```ts
 * import { splitWord } from "./text.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(splitWord("kick bob  too loud "), ["kick", "bob  too loud"]);
 * assert.deepEqual(splitWord("list"), ["list", ""]);
 * ```
 */
export function splitWord(text: string): [string, string] {
  const space = text.indexOf(" ");
  return space < 0 ? [text, ""] : [text.slice(0, space), text.slice(space + 1).trim()];
}

/**
 * A duration for people, in its largest whole unit: `42s`, `5m`, `3h`, `2d`.
 *
 * @example
 * ```ts
 * import { duration } from "./text.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(duration(59), "59s");
 * assert.equal(duration(7200), "2h");
 * ```
 */
export function duration(seconds: number): string {
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)}h`;
  return `${Math.floor(seconds / 86400)}d`;
}
