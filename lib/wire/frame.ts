/**
 * Byte chunks to lines: the wire format of charla is UTF-8 text, one message per
 * line ending in `\n`, with an optional `\r` before it (telnet, `nc -C`).
 *
 * The decoder works on bytes, never on strings, for two reasons. A multi-byte
 * character split across two reads stays intact because lines are cut only at
 * `\n` (0x0A), a byte that never occurs inside a UTF-8 sequence. And the relay
 * can copy line bytes straight into outgoing buffers without decoding them.
 *
 * @module
 */

/** Default maximum line length in bytes, not counting the line ending. */
export const DEFAULT_MAX_LINE = 65_536;

const LF = 0x0a;
const CR = 0x0d;

/** Receives what a {@linkcode LineDecoder} finds in the bytes fed to it. */
export interface LineSink {
  /**
   * One complete line: `buf[start..end)`, without its `\n` or `\r\n`. The bytes are
   * only valid during the call: the decoder reuses its buffers afterwards.
   */
  line(buf: Uint8Array, start: number, end: number): void;
  /** A line grew past the limit: it is being discarded; called once per such line. */
  overlong(): void;
}

/** Options for {@linkcode LineDecoder}. */
export interface LineDecoderOptions {
  /**
   * Longest line accepted, in bytes, without its line ending. Longer lines are
   * dropped as they stream in, so memory stays bounded by this value.
   * @default {65536}
   */
  maxLine?: number;
}

/**
 * Splits byte chunks into lines, holding at most one partial line of at most
 * `maxLine` bytes between chunks.
 *
 * @example Lines split at awkward places
 * ```ts
 * import { LineDecoder } from "./frame.ts";
 * import assert from "node:assert/strict";
 *
 * const lines: string[] = [];
 * const text = new TextDecoder();
 * const sink = {
 *   line: (b: Uint8Array, s: number, e: number) => lines.push(text.decode(b.subarray(s, e))),
 *   overlong: () => lines.push("(too long)"),
 * };
 * const decoder = new LineDecoder();
 * const bytes = new TextEncoder().encode("hola\r\nñandú\nfin");
 * decoder.push(bytes.subarray(0, 5), sink); // "hola\r"
 * decoder.push(bytes.subarray(5, 8), sink); // "\n" and half of "ñ"
 * decoder.push(bytes.subarray(8), sink);
 * decoder.end(sink); // the final line has no "\n" but is still delivered
 * assert.deepEqual(lines, ["hola", "ñandú", "fin"]);
 * ```
 */
export class LineDecoder {
  /** Limit on a line's content bytes (its `\r\n` or `\n` not counted). */
  readonly maxLine: number;
  /** Bytes of the current partial line; null while there is none, so idle peers hold nothing. */
  #carry: Uint8Array | null = null;
  /** How many bytes of `#carry` are used. */
  #carryLength = 0;
  /** True while skipping the rest of an over-long line, up to its `\n`. */
  #discarding = false;
  /** Lines completed so far (over-long ones included): tells one partial line from the next. */
  #completed = 0;

  /** Makes a decoder; see {@linkcode LineDecoderOptions}. */
  constructor(options: LineDecoderOptions = {}) {
    const maxLine = options.maxLine ?? DEFAULT_MAX_LINE;
    if (!Number.isSafeInteger(maxLine) || maxLine < 1) {
      throw new RangeError(`Invalid maxLine "${maxLine}": must be a positive integer`);
    }
    this.maxLine = maxLine;
  }

  /** Bytes held for the current partial line. */
  get buffered(): number {
    return this.#carryLength;
  }

  /** True while a line has begun and not ended (held, or being skipped as over-long). */
  get partial(): boolean {
    return this.#carryLength > 0 || this.#discarding;
  }

  /** How many lines were completed (delivered or reported over-long) so far. */
  get completed(): number {
    return this.#completed;
  }

  /** Feeds one chunk; calls `sink` for every line it completes, in order. */
  push(chunk: Uint8Array, sink: LineSink): void {
    const length = chunk.length;
    let pos = 0;
    if (this.#discarding || this.#carryLength > 0) {
      const nl = chunk.indexOf(LF);
      if (nl < 0) {
        if (!this.#discarding) this.#append(chunk, 0, length, sink);
        return;
      }
      this.#completed++;
      if (this.#discarding) {
        this.#discarding = false;
      } else if (this.#append(chunk, 0, nl, sink)) {
        const carry = this.#carry!;
        const end = trimCr(carry, 0, this.#carryLength);
        this.#carry = null;
        this.#carryLength = 0;
        if (end > this.maxLine) sink.overlong();
        else sink.line(carry, 0, end);
      } else {
        // #append saw the line outgrow the limit and reported it; its `\n` is here.
        this.#discarding = false;
      }
      pos = nl + 1;
    }
    // The common case: whole lines inside this chunk, handed out without copying.
    while (pos < length) {
      const nl = chunk.indexOf(LF, pos);
      if (nl < 0) {
        this.#append(chunk, pos, length, sink);
        return;
      }
      const end = trimCr(chunk, pos, nl);
      this.#completed++;
      if (end - pos > this.maxLine) sink.overlong();
      else sink.line(chunk, pos, end);
      pos = nl + 1;
    }
  }

  /** Ends the input: a final line without `\n` is delivered; the decoder is reset. */
  end(sink: LineSink): void {
    const carry = this.#carry;
    const length = this.#carryLength;
    this.#carry = null;
    this.#carryLength = 0;
    this.#discarding = false;
    if (carry !== null && length > 0) {
      const end = trimCr(carry, 0, length);
      if (end > this.maxLine) sink.overlong();
      else sink.line(carry, 0, end);
    }
  }

  /**
   * Adds `chunk[start..end)` to the partial line. Returns false, after reporting
   * the line as over-long and dropping what was held, when it no longer fits.
   * One byte over the limit is tolerated because it may be the `\r` of a `\r\n`.
   */
  #append(chunk: Uint8Array, start: number, end: number, sink: LineSink): boolean {
    const needed = this.#carryLength + (end - start);
    if (needed > this.maxLine + 1) {
      this.#carry = null;
      this.#carryLength = 0;
      this.#discarding = true;
      sink.overlong();
      return false;
    }
    let carry = this.#carry;
    if (carry === null || carry.length < needed) {
      // Doubling keeps a line that trickles in byte by byte linear, not quadratic.
      const size = Math.min(this.maxLine + 1, Math.max(256, needed, (carry?.length ?? 0) * 2));
      const grown = new Uint8Array(size);
      if (carry !== null) grown.set(carry.subarray(0, this.#carryLength));
      this.#carry = carry = grown;
    }
    carry.set(chunk.subarray(start, end), this.#carryLength);
    this.#carryLength = needed;
    return true;
  }
}

/** End of `buf[start..end)` without one trailing `\r`. */
function trimCr(buf: Uint8Array, start: number, end: number): number {
  return end > start && buf[end - 1] === CR ? end - 1 : end;
}
