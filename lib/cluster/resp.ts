/**
 * RESP, the Redis serialization protocol, as bytes in and values out: an
 * incremental {@linkcode ReplyParser} for RESP2 and RESP3 replies, and a
 * {@linkcode CommandEncoder} that writes commands as arrays of bulk strings.
 * Pure: no sockets, no timers.
 *
 * The parser is fed chunks as the socket delivers them, split anywhere. It does
 * linear work however small the chunks: a bulk string that spans chunks is
 * copied once into a buffer of its announced size, a partial line grows a
 * buffer by doubling and is scanned only where it is new, and a reply is never
 * parsed again from its start. Untrusted input is bounded: one reply may take at
 * most `maxReply` bytes on the wire, checked against announced sizes before
 * anything is allocated, so a server that misbehaves cannot grow our memory
 * past that.
 *
 * @module
 */

/** The largest reply accepted by default: 512 MiB, like Redis's `proto-max-bulk-len`. */
export const DEFAULT_MAX_REPLY = 512 * 1024 * 1024;

/**
 * Deepest nesting of aggregates accepted. Redis replies nest four deep at most
 * (XREAD); a script may return deeper tables, but code walking a reply
 * recursively should not have to fear the stack.
 */
export const MAX_DEPTH = 128;

const CR = 0x0d;
const LF = 0x0a;

/**
 * A value Redis sent back.
 *
 * | RESP type                            | value                          |
 * | ------------------------------------ | ------------------------------ |
 * | simple string `+`                    | `string`                       |
 * | bulk string `$`, verbatim `=`        | `Uint8Array` (binary-safe)     |
 * | integer `:`                          | `number`, `bigint` past 2^53   |
 * | null `_`, `$-1`, `*-1`               | `null`                         |
 * | array `*`                            | `Reply[]`                      |
 * | error `-`, blob error `!`            | {@linkcode RedisError}         |
 * | double `,`                           | `number`                       |
 * | boolean `#`                          | `boolean`                      |
 * | big number `(`                       | `bigint`                       |
 * | map `%`                              | `Map<Reply, Reply>`            |
 * | set `~`                              | `Set<Reply>`                   |
 * | push `>`                             | {@linkcode PushReply}          |
 *
 * Attributes (`|`) are read and dropped. Streamed strings and aggregates (`$?`,
 * `*?`) are refused as a protocol error: Redis never sends them.
 */
export type Reply =
  | string
  | number
  | bigint
  | boolean
  | null
  | Uint8Array
  | RedisError
  | Reply[]
  | Map<Reply, Reply>
  | Set<Reply>
  | PushReply;

/** One argument of a command: strings are sent as UTF-8, numbers in decimal. */
export type Arg = string | Uint8Array | number | bigint;

/**
 * An error reply from Redis (`-ERR unknown command`, `-WRONGTYPE …`). At the top
 * of a reply the client rejects with it; inside an aggregate (EXEC, a script's
 * table) it is a value.
 */
export class RedisError extends Error {
  /** The first word of the error, by Redis's convention its kind: `ERR`, `WRONGTYPE`, `NOAUTH`. */
  readonly code: string;
  /** An error whose text is `message`; `code` defaults to its first word. */
  constructor(message: string, code?: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "RedisError";
    this.code = code ?? /^\S*/.exec(message)![0];
  }
}

/** The peer sent bytes that are not RESP, or a reply over the parser's bounds. */
export class RedisProtocolError extends Error {
  /** `message` says what was wrong with the bytes. */
  constructor(message: string) {
    super(message);
    this.name = "RedisProtocolError";
  }
}

/**
 * A RESP3 push: data the server sends unasked (pub/sub messages, client-side
 * caching invalidations), which answers no command.
 */
export class PushReply {
  /** The push's elements; the first names its kind (`message`, `invalidate`). */
  readonly data: Reply[];
  /** Wraps `data`. */
  constructor(data: Reply[]) {
    this.data = data;
  }
}

/** Options for {@linkcode ReplyParser}. */
export interface ReplyParserOptions {
  /**
   * Most bytes one reply may take on the wire, whether one bulk string or an
   * aggregate with everything inside it.
   * @default {536870912}
   */
  maxReply?: number;
}

/** An aggregate being filled, on the parser's stack. */
interface Aggregate {
  /** The type byte: `*`, `%`, `~`, `>` or `|`. */
  type: number;
  /** Elements still to come (for a map or attribute: keys and values, each). */
  remaining: number;
  items: Reply[];
}

const decoder = new TextDecoder();
/** Decoded with `fatal: false`: Redis text is UTF-8 but a bad byte must not stop the client. */
function text(buf: Uint8Array, start: number, end: number): string {
  // The commonest simple replies, without a decoder call each.
  if (end - start === 2 && buf[start] === 0x4f && buf[start + 1] === 0x4b) return "OK";
  return decoder.decode(buf.subarray(start, end));
}

/**
 * Turns byte chunks, split anywhere, into replies. One parser serves one
 * connection, in order.
 *
 * After a {@linkcode RedisProtocolError} the parser refuses further input: the
 * bytes that follow cannot be trusted to start a reply, so the connection must
 * be closed.
 *
 * @example A reply in two chunks
 * ```ts
 * import { ReplyParser } from "./resp.ts";
 * import assert from "node:assert/strict";
 *
 * const replies: unknown[] = [];
 * const parser = new ReplyParser();
 * const bytes = new TextEncoder().encode("*2\r\n$5\r\nhola!\r\n:42\r\n+OK\r\n");
 * parser.push(bytes.subarray(0, 10), (reply) => replies.push(reply));
 * assert.equal(replies.length, 0); // the array is not complete yet
 * parser.push(bytes.subarray(10), (reply) => replies.push(reply));
 * assert.deepEqual(replies, [[new TextEncoder().encode("hola!"), 42], "OK"]);
 * ```
 */
export class ReplyParser {
  /** See {@linkcode ReplyParserOptions.maxReply}. */
  readonly maxReply: number;
  /** Aggregates being filled, outermost first. */
  #stack: Aggregate[] = [];
  /** Wire bytes of the current top-level reply so far, counted against `maxReply`. */
  #replyBytes = 0;
  /** A bulk string that spans chunks: its body and its CRLF, filled as chunks come. */
  #bulk: Uint8Array | null = null;
  /** How much of `#bulk` is filled. */
  #bulkFilled = 0;
  /** The type byte of `#bulk`: `$`, `!` or `=`. */
  #bulkType = 0;
  /** A line that spans chunks, CRLF included once complete; null while there is none. */
  #line: Uint8Array | null = null;
  /** How many bytes of `#line` are used. */
  #lineLength = 0;
  /** Set by a protocol error: everything after it is refused. */
  #failed: RedisProtocolError | null = null;

  /** A parser; see {@linkcode ReplyParserOptions}. */
  constructor(options: ReplyParserOptions = {}) {
    const maxReply = options.maxReply ?? DEFAULT_MAX_REPLY;
    if (!Number.isSafeInteger(maxReply) || maxReply < 16) {
      throw new RangeError(`Invalid maxReply "${maxReply}": must be an integer of at least 16`);
    }
    this.maxReply = maxReply;
  }

  /** True between replies: no partial reply is held. */
  get idle(): boolean {
    return this.#stack.length === 0 && this.#bulk === null && this.#line === null;
  }

  /**
   * Parses `chunk`, calling `onReply` for each complete top-level reply in
   * order. The chunk may be reused by the caller afterwards: replies never point
   * into it. Throws {@linkcode RedisProtocolError} on bytes that are not RESP or
   * over the bounds; an exception thrown by `onReply` also ends the parser.
   */
  push(chunk: Uint8Array, onReply: (reply: Reply) => void): void {
    if (this.#failed !== null) throw this.#failed;
    try {
      this.#parse(chunk, onReply);
    } catch (error) {
      this.#failed = error instanceof RedisProtocolError
        ? error
        : new RedisProtocolError("The parser stopped after an exception in onReply");
      // Let go of whatever the partial reply held.
      this.#stack = [];
      this.#bulk = null;
      this.#line = null;
      this.#lineLength = 0;
      throw error;
    }
  }

  #parse(chunk: Uint8Array, onReply: (reply: Reply) => void): void {
    const end = chunk.length;
    let at = 0;
    while (at < end) {
      const bulk = this.#bulk;
      if (bulk !== null) {
        const n = Math.min(end - at, bulk.length - this.#bulkFilled);
        bulk.set(chunk.subarray(at, at + n), this.#bulkFilled);
        this.#bulkFilled += n;
        at += n;
        if (this.#bulkFilled < bulk.length) return;
        this.#bulk = null;
        const size = bulk.length - 2;
        if (bulk[size] !== CR || bulk[size + 1] !== LF) {
          throw new RedisProtocolError("Expected CRLF after a bulk string");
        }
        this.#value(bulkValue(this.#bulkType, bulk, 0, size, false), onReply);
        continue;
      }
      // Everything else starts with a line: find its LF, in this chunk or after
      // what an earlier chunk left.
      const lf = chunk.indexOf(LF, at);
      let buf: Uint8Array;
      let start: number;
      let stop: number;
      if (this.#line === null) {
        if (lf < 0) {
          this.#keepLine(chunk, at, end);
          return;
        }
        buf = chunk;
        start = at;
        stop = lf + 1;
      } else {
        this.#keepLine(chunk, at, lf < 0 ? end : lf + 1);
        if (lf < 0) return;
        buf = this.#line;
        start = 0;
        stop = this.#lineLength;
        this.#line = null;
        this.#lineLength = 0;
      }
      at = lf + 1;
      // `stop` is past the LF; the line proper ends before its CR.
      if (stop - start < 3 || buf[stop - 2] !== CR) {
        throw new RedisProtocolError(
          stop - start < 3 ? "Empty line where a reply was expected" : "Line ends in LF without CR",
        );
      }
      this.#replyBytes += stop - start;
      this.#checkSize(0);
      at = this.#handleLine(buf, start, stop - 2, chunk, at, onReply);
    }
  }

  /** Keeps `chunk[from..to)` as (part of) a line that continues in the next chunk. */
  #keepLine(chunk: Uint8Array, from: number, to: number): void {
    const length = this.#lineLength + (to - from);
    if (this.#replyBytes + length > this.maxReply) {
      throw new RedisProtocolError(`Reply longer than the limit of ${this.maxReply} bytes`);
    }
    let line = this.#line;
    if (line === null) {
      line = new Uint8Array(Math.max(64, length));
    } else if (length > line.length) {
      const grown = new Uint8Array(Math.max(length, line.length * 2));
      grown.set(line.subarray(0, this.#lineLength));
      line = grown;
    }
    line.set(chunk.subarray(from, to), this.#lineLength);
    this.#lineLength = length;
    this.#line = line;
  }

  /** Fails if `more` bytes would take the current reply past `maxReply`. */
  #checkSize(more: number): void {
    if (this.#replyBytes + more > this.maxReply) {
      throw new RedisProtocolError(`Reply longer than the limit of ${this.maxReply} bytes`);
    }
  }

  /**
   * Handles the line `buf[start..stop)` (without CRLF). For a bulk header, reads
   * its body from `chunk` at `at` as far as it goes; returns where parsing goes on.
   */
  #handleLine(
    buf: Uint8Array,
    start: number,
    stop: number,
    chunk: Uint8Array,
    at: number,
    onReply: (reply: Reply) => void,
  ): number {
    const type = buf[start];
    switch (type) {
      case 0x2b: // + simple string
        this.#value(text(buf, start + 1, stop), onReply);
        return at;
      case 0x2d: // - error
        this.#value(new RedisError(text(buf, start + 1, stop)), onReply);
        return at;
      case 0x3a: { // : integer
        const n = parseInteger(buf, start + 1, stop);
        if (n === null) throw badLine("integer", buf, start, stop);
        this.#value(n, onReply);
        return at;
      }
      case 0x24: // $ bulk string
      case 0x21: // ! blob error
      case 0x3d: { // = verbatim string
        const size = parseLength(buf, start, stop);
        if (size < 0) {
          this.#value(null, onReply);
          return at;
        }
        if (type === 0x3d && size < 4) throw badLine("verbatim string length", buf, start, stop);
        this.#checkSize(size + 2);
        this.#replyBytes += size + 2;
        if (chunk.length - at >= size + 2) {
          if (chunk[at + size] !== CR || chunk[at + size + 1] !== LF) {
            throw new RedisProtocolError("Expected CRLF after a bulk string");
          }
          this.#value(bulkValue(type, chunk, at, at + size, true), onReply);
          return at + size + 2;
        }
        // The body spans chunks: one buffer of the announced size, filled as they come.
        const bulk = new Uint8Array(size + 2);
        bulk.set(chunk.subarray(at));
        this.#bulk = bulk;
        this.#bulkFilled = chunk.length - at;
        this.#bulkType = type;
        return chunk.length;
      }
      case 0x2a: // * array
      case 0x25: // % map
      case 0x7e: // ~ set
      case 0x3e: // > push
      case 0x7c: { // | attribute
        const count = parseLength(buf, start, stop);
        if (count < 0) {
          if (type !== 0x2a) throw badLine("aggregate length", buf, start, stop);
          this.#value(null, onReply);
          return at;
        }
        const elements = type === 0x25 || type === 0x7c ? count * 2 : count;
        // Every element takes three bytes at least (`_\r\n`, `+\r\n`): a count
        // the limit cannot hold fails now, before anything is kept for it.
        this.#checkSize(elements * 3);
        if (elements === 0) {
          this.#value(finish(type, []), onReply);
          return at;
        }
        if (this.#stack.length >= MAX_DEPTH) {
          throw new RedisProtocolError(`Reply nested deeper than ${MAX_DEPTH} aggregates`);
        }
        this.#stack.push({ type, remaining: elements, items: [] });
        return at;
      }
      case 0x5f: // _ null
        if (stop !== start + 1) throw badLine("null", buf, start, stop);
        this.#value(null, onReply);
        return at;
      case 0x23: { // # boolean
        const flag = stop === start + 2 ? buf[start + 1] : 0;
        if (flag !== 0x74 && flag !== 0x66) throw badLine("boolean", buf, start, stop);
        this.#value(flag === 0x74, onReply);
        return at;
      }
      case 0x2c: { // , double
        const value = parseDouble(text(buf, start + 1, stop));
        if (value === null) throw badLine("double", buf, start, stop);
        this.#value(value, onReply);
        return at;
      }
      case 0x28: { // ( big number
        const digits = text(buf, start + 1, stop);
        if (!/^[-+]?\d+$/.test(digits)) throw badLine("big number", buf, start, stop);
        this.#value(BigInt(digits), onReply);
        return at;
      }
      default:
        throw new RedisProtocolError(
          `Unexpected ${JSON.stringify(text(buf, start, Math.min(stop, start + 32)))} ` +
            "where a reply was expected; is the peer a Redis server?",
        );
    }
  }

  /** Delivers a complete value: to the aggregate being filled, or as a reply. */
  #value(value: Reply, onReply: (reply: Reply) => void): void {
    const stack = this.#stack;
    while (stack.length > 0) {
      const top = stack[stack.length - 1];
      top.items.push(value);
      if (--top.remaining > 0) return;
      stack.pop();
      // An attribute describes the value after it, and we keep no attributes:
      // it is as if it had not been sent.
      if (top.type === 0x7c) return;
      value = finish(top.type, top.items);
    }
    this.#replyBytes = 0;
    onReply(value);
  }
}

/** The value of a complete aggregate. */
function finish(type: number, items: Reply[]): Reply {
  switch (type) {
    case 0x25: {
      const map = new Map<Reply, Reply>();
      for (let i = 0; i < items.length; i += 2) map.set(items[i], items[i + 1]);
      return map;
    }
    case 0x7e:
      return new Set(items);
    case 0x3e:
      return new PushReply(items);
    default:
      return items;
  }
}

/** The value of a bulk-typed body `buf[start..stop)`; `copy` when `buf` is the caller's chunk. */
function bulkValue(
  type: number,
  buf: Uint8Array,
  start: number,
  stop: number,
  copy: boolean,
): Reply {
  if (type === 0x21) return new RedisError(text(buf, start, stop));
  // A verbatim string starts with its format, `txt:` or `mkd:`: the text is what follows.
  if (type === 0x3d) start += 4;
  return copy ? buf.slice(start, stop) : buf.subarray(start, stop);
}

/** The length in a `$`/`*`-style header: -1 for null; throws if it is not a length. */
function parseLength(buf: Uint8Array, start: number, stop: number): number {
  const n = parseInteger(buf, start + 1, stop);
  if (typeof n !== "number" || n < -1) throw badLine("length", buf, start, stop);
  return n;
}

/** A signed decimal integer: a number while exact, else a bigint; null if malformed. */
function parseInteger(buf: Uint8Array, start: number, stop: number): number | bigint | null {
  const negative = buf[start] === 0x2d;
  let i = negative || buf[start] === 0x2b ? start + 1 : start;
  if (i >= stop) return null;
  if (stop - i > 15) {
    // Past 15 digits a double may round: let BigInt read it.
    for (let j = i; j < stop; j++) if (buf[j] < 0x30 || buf[j] > 0x39) return null;
    const big = BigInt(text(buf, start, stop));
    return big >= BigInt(Number.MIN_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER)
      ? Number(big)
      : big;
  }
  let n = 0;
  for (; i < stop; i++) {
    const digit = buf[i] - 0x30;
    if (digit < 0 || digit > 9) return null;
    n = n * 10 + digit;
  }
  return negative ? -n : n;
}

/** A RESP3 double: decimal, `inf`, `-inf` or `nan`; null if malformed. */
function parseDouble(value: string): number | null {
  switch (value) {
    case "inf":
    case "+inf":
      return Infinity;
    case "-inf":
      return -Infinity;
    case "nan":
      return NaN;
  }
  const n = Number(value);
  return value.trim() !== "" && !Number.isNaN(n) ? n : null;
}

/** A protocol error quoting the start of the bad line. */
function badLine(what: string, buf: Uint8Array, start: number, stop: number): RedisProtocolError {
  const shown = JSON.stringify(text(buf, start, Math.min(stop, start + 32)));
  return new RedisProtocolError(`Malformed ${what} in ${shown}`);
}

const encoder = new TextEncoder();
/** Strings up to this long are tried as ASCII first (see `#shortAscii`); must stay under 1,000. */
const SHORT_STRING = 256;
/** Strings longer than this are encoded on their own rather than in place. */
const IN_PLACE_STRING = 64 * 1024;

/**
 * Writes commands in RESP (an array of bulk strings each) into one growing
 * buffer, so that a batch of commands becomes a single write.
 *
 * @example Two commands, one buffer
 * ```ts
 * import { CommandEncoder } from "./resp.ts";
 * import assert from "node:assert/strict";
 *
 * const encoder = new CommandEncoder();
 * encoder.encode(["SET", "ñ", 1]);
 * encoder.encode(["GET", new Uint8Array([0, 255])]);
 * assert.equal(encoder.length, 28 + 21);
 * const bytes = encoder.take();
 * assert.equal(
 *   new TextDecoder().decode(bytes.subarray(0, 28)),
 *   "*3\r\n$3\r\nSET\r\n$2\r\nñ\r\n$1\r\n1\r\n",
 * );
 * assert.equal(encoder.length, 0);
 * ```
 */
export class CommandEncoder {
  /** Where commands are written; handed out by `take()` and replaced. */
  #buf = new Uint8Array(4096);
  /** Bytes of `#buf` in use. */
  #length = 0;

  /** Bytes encoded and not yet taken. */
  get length(): number {
    return this.#length;
  }

  /**
   * Appends one command. Throws `TypeError` for an argument that is not a
   * string, bytes, a finite number or a bigint, and then appends nothing.
   */
  encode(args: readonly Arg[]): void {
    if (args.length === 0) throw new TypeError("A command needs at least one argument");
    const mark = this.#length;
    try {
      this.#ascii(`*${args.length}\r\n`);
      for (const arg of args) this.#arg(arg);
    } catch (error) {
      this.#length = mark;
      throw error;
    }
  }

  /**
   * Returns everything encoded since the last call, and starts a new buffer:
   * the bytes returned are the caller's, to write whenever it likes.
   */
  take(): Uint8Array {
    const bytes = this.#buf.subarray(0, this.#length);
    // A new buffer of the size the last batch needed, so a steady load does not
    // grow it again each time; but not a huge one kept for a rare huge command.
    this.#buf = new Uint8Array(Math.min(Math.max(4096, this.#length), 1024 * 1024));
    this.#length = 0;
    return bytes;
  }

  #arg(arg: Arg): void {
    if (typeof arg === "string") return this.#string(arg);
    if (arg instanceof Uint8Array) {
      this.#ascii(`$${arg.length}\r\n`);
      this.#bytes(arg);
      return this.#crlf();
    }
    if (typeof arg === "number") {
      if (!Number.isFinite(arg)) {
        throw new TypeError(`Invalid argument ${arg}: pass infinities as "+inf" or "-inf"`);
      }
    } else if (typeof arg !== "bigint") {
      throw new TypeError(
        `Invalid argument of type ${arg === null ? "null" : typeof arg}: ` +
          "expected a string, a Uint8Array, a number or a bigint",
      );
    }
    const digits = String(arg);
    this.#ascii(`$${digits.length}\r\n${digits}\r\n`);
  }

  #string(value: string): void {
    if (value.length <= SHORT_STRING && this.#shortAscii(value)) return;
    if (value.length > IN_PLACE_STRING) {
      const bytes = encoder.encode(value);
      this.#ascii(`$${bytes.length}\r\n`);
      this.#bytes(bytes);
      return this.#crlf();
    }
    // Encode straight into the buffer after room for the longest header this
    // string could need (3 bytes per UTF-16 unit at most), then move it back
    // if the header came out shorter: no intermediate array per argument.
    const most = value.length * 3;
    const room = String(most).length + 3; // "$" digits "\r\n"
    this.#reserve(room + most + 2);
    const at = this.#length;
    const { written } = encoder.encodeInto(value, this.#buf.subarray(at + room));
    const header = `$${written}\r\n`;
    if (header.length < room) {
      this.#buf.copyWithin(at + header.length, at + room, at + room + written);
    }
    for (let i = 0; i < header.length; i++) this.#buf[at + i] = header.charCodeAt(i);
    this.#length = at + header.length + written;
    this.#crlf();
  }

  /**
   * Appends a short string as a bulk string if it is all ASCII, copying its
   * characters in a loop: cheaper than a call into the runtime's encoder for
   * the names, keys and ids most commands are made of. False, with nothing
   * appended, at the first character that is not ASCII.
   */
  #shortAscii(value: string): boolean {
    const length = value.length;
    const header = length < 10 ? 4 : length < 100 ? 5 : 6; // "$" digits "\r\n"
    this.#reserve(header + length + 2);
    const buf = this.#buf;
    const start = this.#length + header;
    for (let i = 0; i < length; i++) {
      const code = value.charCodeAt(i);
      if (code > 0x7f) return false;
      buf[start + i] = code;
    }
    this.#ascii(`$${length}\r\n`);
    this.#length += length;
    this.#crlf();
    return true;
  }

  /** Appends an ASCII string. */
  #ascii(value: string): void {
    this.#reserve(value.length);
    const buf = this.#buf;
    let at = this.#length;
    for (let i = 0; i < value.length; i++) buf[at++] = value.charCodeAt(i);
    this.#length = at;
  }

  #bytes(bytes: Uint8Array): void {
    this.#reserve(bytes.length);
    this.#buf.set(bytes, this.#length);
    this.#length += bytes.length;
  }

  #crlf(): void {
    this.#reserve(2);
    this.#buf[this.#length++] = CR;
    this.#buf[this.#length++] = LF;
  }

  /** Makes room for `more` bytes, doubling. */
  #reserve(more: number): void {
    const need = this.#length + more;
    if (need <= this.#buf.length) return;
    const grown = new Uint8Array(Math.max(need, this.#buf.length * 2));
    grown.set(this.#buf.subarray(0, this.#length));
    this.#buf = grown;
  }
}

/**
 * One command as RESP bytes.
 *
 * @example
 * ```ts
 * import { encodeCommand } from "./resp.ts";
 * import assert from "node:assert/strict";
 *
 * const bytes = encodeCommand(["PING"]);
 * assert.equal(new TextDecoder().decode(bytes), "*1\r\n$4\r\nPING\r\n");
 * ```
 */
export function encodeCommand(args: readonly Arg[]): Uint8Array {
  const encoder = new CommandEncoder();
  encoder.encode(args);
  return encoder.take();
}

/** A {@linkcode Reply} with every byte string decoded as UTF-8 text. */
export type TextReply =
  | string
  | number
  | bigint
  | boolean
  | null
  | RedisError
  | TextReply[]
  | Map<TextReply, TextReply>
  | Set<TextReply>;

/**
 * Decodes every byte string in `reply` as UTF-8 (invalid bytes become U+FFFD),
 * through arrays, maps, sets and pushes (a push becomes its array), so that
 * replies can be compared and map keys looked up as strings.
 *
 * @example The nested reply of XRANGE
 * ```ts
 * import { decodeReply } from "./resp.ts";
 * import assert from "node:assert/strict";
 *
 * const bytes = (s: string) => new TextEncoder().encode(s);
 * const reply = [[bytes("1-0"), [bytes("text"), bytes("hola")]]];
 * assert.deepEqual(decodeReply(reply), [["1-0", ["text", "hola"]]]);
 * ```
 */
export function decodeReply(reply: Reply): TextReply {
  if (reply instanceof Uint8Array) return decoder.decode(reply);
  if (Array.isArray(reply)) return reply.map(decodeReply);
  if (reply instanceof PushReply) return reply.data.map(decodeReply);
  if (reply instanceof Map) {
    const map = new Map<TextReply, TextReply>();
    for (const [key, value] of reply) map.set(decodeReply(key), decodeReply(value));
    return map;
  }
  if (reply instanceof Set) return new Set([...reply].map(decodeReply));
  return reply;
}
