/**
 * The bench's 64-byte lines, built and checked as bytes.
 *
 * The generator has to read millions of lines while the server it measures runs
 * on the same machine, so it never makes a string per line: lines are stamped
 * into reused buffers from templates, and checked where they arrive in the read
 * buffer.
 *
 * Layout of a line (64 bytes with its `\n`):
 *
 * ```
 * offset 0      tag byte: "f" fanout, "t" latency, "~" ingest
 * offset 1..5   sender index, 4 digits (ingest: the run's 4-digit nonce)
 * offset 5      " "
 * offset 6..14  sequence number, 8 digits, from 0 per sender
 * offset 14     " "
 * offset 15..63 48 filler bytes that depend on the sequence number
 *               (latency: the first 16 are the send time in microseconds)
 * offset 63     "\n"
 * ```
 *
 * @module
 */

/** Bytes in one line, its `\n` included. */
export const LINE_BYTES = 64;
/** Bytes in one line without its `\n`: what a receiver sees after the sender prefix. */
export const PAYLOAD_BYTES = LINE_BYTES - 1;
/** Offset of the sender digits. */
export const SENDER_AT = 1;
/** Offset of the sequence digits. */
export const SEQ_AT = 6;
/** Width of the sequence number. */
export const SEQ_DIGITS = 8;
/** Offset of the filler (and of the latency timestamp). */
export const FILLER_AT = 15;
/** Width of the latency timestamp, in microseconds. */
export const STAMP_DIGITS = 16;

/** `"\n"`: this and the byte values below are what the scanners compare against. */
export const LF = 0x0a;
/** `" "` */
export const SPACE = 0x20;
/** `"*"`, first byte of a server notice. */
export const STAR = 0x2a;
/** `"<"`, first byte of a relayed line. */
export const LT = 0x3c;
/** `">"` */
export const GT = 0x3e;
/** `"0"` */
const ZERO = 0x30;

const FILLER_LENGTH = PAYLOAD_BYTES - FILLER_AT;
const ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
/**
 * The alphabet twice: the filler of sequence number `seq` is the 48 bytes from
 * `seq % 62`, so a line pasted at the wrong place, cut, or joined to another
 * fails the check.
 */
const FILL = new TextEncoder().encode(ALPHABET + ALPHABET);

/** Writes `value` as exactly `width` decimal digits at `buf[at..at+width)`. */
export function writeDigits(buf: Uint8Array, at: number, width: number, value: number): void {
  for (let i = at + width - 1; i >= at; i--) {
    const q = Math.floor(value / 10);
    buf[i] = ZERO + value - q * 10;
    value = q;
  }
}

/** The number in `buf[start..end)`, or -1 when that is empty or holds a non-digit. */
export function readDigits(buf: Uint8Array, start: number, end: number): number {
  if (start >= end) return -1;
  let value = 0;
  for (let i = start; i < end; i++) {
    const d = buf[i] - ZERO;
    if (d < 0 || d > 9) return -1;
    value = value * 10 + d;
  }
  return value;
}

/**
 * Stamps the lines of one sender into reused batches: a template per filler
 * phase, so each line costs one 64-byte copy plus its sequence digits.
 */
export class LineStamper {
  /** One complete line per `seq % 62`, sequence digits left as zeros. */
  readonly #templates: Uint8Array[] = [];

  /** Prepares the lines of sender `sender` (0..9999) with tag byte `tag`. */
  constructor(tag: string, sender: number) {
    for (let phase = 0; phase < ALPHABET.length; phase++) {
      const line = new Uint8Array(LINE_BYTES);
      line[0] = tag.charCodeAt(0);
      writeDigits(line, SENDER_AT, 4, sender);
      line[SENDER_AT + 4] = SPACE;
      writeDigits(line, SEQ_AT, SEQ_DIGITS, 0);
      line[SEQ_AT + SEQ_DIGITS] = SPACE;
      line.set(FILL.subarray(phase, phase + FILLER_LENGTH), FILLER_AT);
      line[PAYLOAD_BYTES] = LF;
      this.#templates.push(line);
    }
  }

  /**
   * Fills `batch` with lines `first`, `first + 1`, … as many as fit (at most up to
   * `end`, exclusive) and returns how many bytes were written.
   */
  fill(batch: Uint8Array, first: number, end: number): number {
    const count = Math.min(end - first, Math.floor(batch.length / LINE_BYTES));
    for (let i = 0; i < count; i++) {
      const seq = first + i;
      const at = i * LINE_BYTES;
      batch.set(this.#templates[seq % ALPHABET.length], at);
      writeDigits(batch, at + SEQ_AT, SEQ_DIGITS, seq);
    }
    return count * LINE_BYTES;
  }
}

/**
 * A fixed byte string, matched four bytes at a time: comparing 32-bit words through
 * a DataView costs a third of comparing byte by byte, and the generator checks
 * every byte of every line it receives.
 */
export class Pattern {
  /** The bytes. */
  readonly bytes: Uint8Array;
  /** The bytes as little-endian 32-bit words (a shorter tail is compared by bytes). */
  readonly #words: Int32Array;

  /** Makes a pattern of `bytes`. */
  constructor(bytes: Uint8Array) {
    this.bytes = bytes;
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
    this.#words = new Int32Array(bytes.length >> 2);
    for (let w = 0; w < this.#words.length; w++) this.#words[w] = view.getInt32(4 * w, true);
  }

  /** Whether `buf[at..at+length)` holds the pattern; `view` is a DataView of `buf`. */
  matchesAt(view: DataView, buf: Uint8Array, at: number): boolean {
    const words = this.#words;
    for (let w = 0; w < words.length; w++) {
      if (view.getInt32(at + 4 * w, true) !== words[w]) return false;
    }
    const bytes = this.bytes;
    for (let i = words.length * 4; i < bytes.length; i++) {
      if (buf[at + i] !== bytes[i]) return false;
    }
    return true;
  }
}

/** The filler of each phase (`seq % 62`). */
const FILLERS = Array.from(
  { length: ALPHABET.length },
  (_, phase) => new Pattern(FILL.slice(phase, phase + FILLER_LENGTH)),
);

/**
 * Whether the filler of the payload at `buf[p..p+63)` is the one of sequence
 * number `seq`; `view` is a DataView of `buf`.
 */
export function fillerMatches(view: DataView, buf: Uint8Array, p: number, seq: number): boolean {
  return FILLERS[seq % ALPHABET.length].matchesAt(view, buf, p + FILLER_AT);
}

/**
 * `DIGITS4[n]` is `n` (0..9999) as 4 ASCII digits read as a little-endian 32-bit
 * word: four digits of a line compare against an expected number in one read.
 */
export const DIGITS4: Int32Array = (() => {
  const table = new Int32Array(10_000);
  const digits = new Uint8Array(4);
  const view = new DataView(digits.buffer);
  for (let n = 0; n < table.length; n++) {
    writeDigits(digits, 0, 4, n);
    table[n] = view.getInt32(0, true);
  }
  return table;
})();
