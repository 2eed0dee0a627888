/**
 * The generator's side of one WebSocket: the upgrade, then frames read in place
 * into a scenario's handler, with no string and no allocation per frame, as
 * {@linkcode BenchClient} does for lines. Deno's own `WebSocket` would cost the
 * generator an event and a string per frame, more than the server spends on it.
 *
 * @module
 */

import type { LineHandler } from "./bench_client.ts";

const encoder = new TextEncoder();
/** `{"type":"message"`: the frames the handler gets; others are counted as notices. */
const MESSAGE = encoder.encode('{"type":"message"');
/**
 * What follows a message's text: `","time":` and 13 digits and `}`, 22 bytes
 * (13 digits of milliseconds hold until the year 2286).
 */
const TIME_SUFFIX = encoder.encode('","time":');
const SUFFIX_BYTES = TIME_SUFFIX.length + 13 + 1;
/** How a message's sender starts, up to the id's digits. */
const MESSAGE_FROM = encoder.encode('{"type":"message","room":"#lobby","from":{"id":');
/** Between the id and the name's digits: `,"name":"user`. */
const NAME_BYTES = ',"name":"user'.length;
/** Between the name's digits and the text: `"},"text":"`. */
const TEXT_BYTES = '"},"text":"'.length;
/** Between two events of an array frame. */
const NEXT_EVENT = encoder.encode(',{"type":"');
const OPEN_BRACKET = 0x5b;
const COMMA = 0x2c;

/** One generator WebSocket to the server under test. */
export class WsBenchClient {
  /** The socket. */
  readonly conn: Deno.TcpConn;
  /** The id the welcome gave (the `N` of `userN`); 0 until then. */
  id = 0;
  /** Where `message` frames go, as `buf[start..end)` ending where the text ends. */
  handler: LineHandler | null = null;
  /** Frames other than messages (the welcome, joins, the room): counted, not checked. */
  notices = 0;
  /** Message frames the handler rejected, or that had no handler. */
  rejected = 0;
  /** True once the read loop has ended. */
  closed = false;
  /** The error that ended the read loop, if one did. */
  error: Error | null = null;
  /** Resolves when the read loop ends. */
  readonly finished: Promise<void>;
  readonly #welcome = Promise.withResolvers<void>();

  private constructor(conn: Deno.TcpConn, rest: Uint8Array, bufferSize: number) {
    this.conn = conn;
    this.#welcome.promise.catch(() => {}); // awaited by connect()
    this.finished = this.#readLoop(rest, bufferSize);
  }

  /**
   * Connects to 127.0.0.1:`port`, upgrades `/ws`, and waits for the welcome.
   * `bufferSize`: the read buffer (it grows for a frame that does not fit).
   */
  static async connect(
    port: number,
    bufferSize = 65_536,
    batch = false,
  ): Promise<WsBenchClient> {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    conn.setNoDelay(true);
    const request =
      `GET /ws${
        batch ? "?batch=1" : ""
      } HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\n` +
      "Connection: Upgrade\r\nSec-WebSocket-Key: Y2hhcmxhLWJlbmNoLWtleQ==\r\n" +
      "Sec-WebSocket-Version: 13\r\n\r\n";
    await writeAll(conn, encoder.encode(request));
    // The answer's head, then whatever frames came with it.
    let head = new Uint8Array(0);
    while (true) {
      const chunk = new Uint8Array(4096);
      const n = await conn.read(chunk);
      if (n === null) {
        conn.close();
        throw new Error("The server closed before answering the upgrade");
      }
      const seen = new Uint8Array(head.length + n);
      seen.set(head);
      seen.set(chunk.subarray(0, n), head.length);
      head = seen;
      const end = indexOfCrlfCrlf(head);
      if (end < 0) continue;
      const status = new TextDecoder().decode(head.subarray(0, head.indexOf(0x0d)));
      if (!status.startsWith("HTTP/1.1 101")) {
        conn.close();
        throw new Error(`The upgrade was refused: ${status}`);
      }
      const client = new WsBenchClient(conn, head.slice(end + 4), bufferSize);
      await client.#welcome.promise;
      return client;
    }
  }

  /** Writes all of `bytes` (client frames, masked). */
  write(bytes: Uint8Array): Promise<void> {
    return writeAll(this.conn, bytes);
  }

  /** Closes the socket; the read loop then ends. Safe to call twice. */
  close(): void {
    try {
      this.conn.close();
    } catch (error) {
      if (!(error instanceof Deno.errors.BadResource)) throw error;
    }
  }

  async #readLoop(rest: Uint8Array, bufferSize: number): Promise<void> {
    let buf = new Uint8Array(Math.max(bufferSize, rest.length));
    let view = new DataView(buf.buffer);
    buf.set(rest);
    let end = rest.length;
    try {
      while (true) {
        // Every whole frame in buf[0..end).
        let pos = 0;
        while (end - pos >= 2) {
          let length = buf[pos + 1] & 0x7f;
          let at = pos + 2;
          if (length === 126) {
            if (end - pos < 4) break;
            length = (buf[pos + 2] << 8) | buf[pos + 3];
            at = pos + 4;
          } else if (length === 127) {
            if (end - pos < 10) break;
            length = Number(view.getBigUint64(pos + 2));
            at = pos + 10;
          }
          if (at + length > end) {
            if (at + length - pos > buf.length) {
              // A frame larger than the buffer: grow it, keeping the part read.
              const grown = new Uint8Array(at + length - pos);
              grown.set(buf.subarray(pos, end));
              buf = grown;
              view = new DataView(buf.buffer);
              end -= pos;
              pos = 0;
            }
            break;
          }
          const opcode = buf[pos] & 0x0f;
          if (opcode === 1) this.#frame(buf, at, at + length, view);
          else if (opcode === 9) await this.write(pong(buf.subarray(at, at + length)));
          else if (opcode === 8) return;
          pos = at + length;
        }
        if (pos > 0) {
          buf.copyWithin(0, pos, end);
          end -= pos;
        }
        const n = await this.conn.read(buf.subarray(end));
        if (n === null) return;
        end += n;
      }
    } catch (error) {
      // ConnectionReset from the server, BadResource or Interrupted when we close:
      // recorded, not thrown (nobody awaits this loop until the end).
      this.error = error instanceof Error ? error : new Error(String(error));
    } finally {
      this.closed = true;
      if (this.id === 0) this.#welcome.reject(new Error("Connection ended before the welcome"));
    }
  }

  #frame(buf: Uint8Array, start: number, end: number, view: DataView): void {
    if (this.id === 0) {
      // The welcome comes first, alone or at the head of an array frame.
      const value = JSON.parse(new TextDecoder().decode(buf.subarray(start, end)));
      const event = Array.isArray(value) ? value[0] : value;
      if (Array.isArray(value)) this.notices += value.length - 1;
      if (event?.type !== "welcome") {
        this.#welcome.reject(new Error(`Expected a welcome first, got ${event.type}`));
        this.close();
        return;
      }
      this.id = event.you.id;
      this.#welcome.resolve();
      return;
    }
    if (buf[start] !== OPEN_BRACKET) return this.#event(buf, start, end, view);
    // An array of events: each ends where the next begins, or at the "]".
    let at = start + 1;
    while (at < end - 1) {
      const next = messageEnd(buf, at, end - 1) ?? find(buf, at + 1, end - 1, NEXT_EVENT);
      const stop = next < 0 ? end - 1 : next;
      this.#event(buf, at, stop, view);
      if (buf[stop] === COMMA) at = stop + 1;
      else break;
    }
  }

  /** One event, `buf[start..end)`. */
  #event(buf: Uint8Array, start: number, end: number, view: DataView): void {
    if (!startsWith(buf, start, MESSAGE)) {
      this.notices++;
      return;
    }
    const textEnd = end - SUFFIX_BYTES;
    if (
      this.handler === null || textEnd <= start || !startsWith(buf, textEnd, TIME_SUFFIX) ||
      !this.handler.line(buf, start, textEnd, view)
    ) this.rejected++;
  }
}

/** Opens `count` WebSockets, at most `concurrency` at a time, each welcomed. */
export async function connectManyWs(
  port: number,
  count: number,
  options: { bufferSize?: number; concurrency?: number; batch?: boolean } = {},
): Promise<WsBenchClient[]> {
  const clients: WsBenchClient[] = [];
  const concurrency = Math.min(options.concurrency ?? 100, count);
  let started = 0;
  let failure: unknown = null;
  const worker = async () => {
    while (started < count && failure === null) {
      started++;
      try {
        clients.push(await WsBenchClient.connect(port, options.bufferSize, options.batch));
      } catch (error) {
        failure ??= error;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  if (failure !== null) {
    for (const client of clients) client.close();
    throw new Error(`WebSocket ${clients.length + 1} of ${count} failed: ${failure}`, {
      cause: failure,
    });
  }
  return clients;
}

/**
 * A client text frame for `payload` (at most 125 bytes), masked with a zero
 * key: a client must mask, and a zero key costs no work on either side.
 */
export function textFrame(payload: Uint8Array, into: Uint8Array, at: number): number {
  into[at] = 0x81;
  into[at + 1] = 0x80 | payload.length;
  into.fill(0, at + 2, at + 6);
  into.set(payload, at + 6);
  return at + 6 + payload.length;
}

function pong(payload: Uint8Array): Uint8Array {
  const frame = new Uint8Array(6 + payload.length);
  frame[0] = 0x8a;
  frame[1] = 0x80 | payload.length;
  frame.set(payload, 6);
  return frame;
}

/**
 * Where the bench's message event that starts at `at` ends, from its layout
 * (the sender's id twice, then a 63-byte text and the time), without looking
 * at the bytes between: the handler checks every one of them. Null when it is
 * not such a message; the caller then searches.
 */
function messageEnd(buf: Uint8Array, at: number, limit: number): number | null {
  if (!startsWith(buf, at, MESSAGE_FROM)) return null;
  let digits = at + MESSAGE_FROM.length;
  while (digits < limit && buf[digits] >= 0x30 && buf[digits] <= 0x39) digits++;
  const idLength = digits - at - MESSAGE_FROM.length;
  const end = digits + NAME_BYTES + idLength + TEXT_BYTES + 63 + SUFFIX_BYTES;
  return end <= limit ? end : null;
}

/** The first index of `needle` in `buf[from..to)`, or -1. */
function find(buf: Uint8Array, from: number, to: number, needle: Uint8Array): number {
  for (let i = from; i + needle.length <= to; i++) {
    if (buf[i] === needle[0] && startsWith(buf, i, needle)) return i;
  }
  return -1;
}

function startsWith(buf: Uint8Array, at: number, prefix: Uint8Array): boolean {
  for (let i = 0; i < prefix.length; i++) if (buf[at + i] !== prefix[i]) return false;
  return true;
}

function indexOfCrlfCrlf(bytes: Uint8Array): number {
  for (let i = 0; i + 3 < bytes.length; i++) {
    if (bytes[i] === 13 && bytes[i + 1] === 10 && bytes[i + 2] === 13 && bytes[i + 3] === 10) {
      return i;
    }
  }
  return -1;
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) at += await conn.write(bytes.subarray(at));
}
