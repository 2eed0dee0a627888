/**
 * Warms the relay path before the first client connects: a throwaway
 * {@linkcode ChatServer} on an ephemeral loopback port, a few clients of this
 * same process, and a few thousand lines between them, so that the functions
 * every relayed line goes through (reading, framing, sanitizing, the room's
 * fan-out, the send queue, the operator's log, and the queue the SQLite store
 * keeps lines in until they are written) are compiled by V8's optimizing
 * tiers before real people wait on them. Without it, most of the slow lines of
 * a fresh server fell in its first few hundred milliseconds (JIT tiers and the
 * first scavenges): `deno task bench`, latency scenario.
 *
 * It never holds the start for long ({@linkcode WARM_UP_TIMEOUT_MS} at most,
 * and a failure only ends the warm-up) and leaves nothing behind: its server,
 * clients and log are closed before it returns.
 *
 * @module
 */

import { ChatServer } from "./chat_server.ts";
import type { RoomName } from "./core/messages.ts";
import type { LineBatch } from "./store/line_log.ts";
import { MemoryStore } from "./store/memory.ts";
import { Unwritten } from "./store/unwritten.ts";
import { OutputBuffer } from "./terminal/output.ts";
import { ServerConsole } from "./terminal/server_console.ts";
import { Styler } from "./terminal/style.ts";

/** Longest the warm-up may take; past it the server starts anyway. */
export const WARM_UP_TIMEOUT_MS = 1_000;
/** Clients in the warm-up room, of which {@linkcode WARM_UP_SENDERS} send. */
export const WARM_UP_CLIENTS = 6;
export const WARM_UP_SENDERS = 2;
/** Lines each sender sends: enough calls for V8's optimizing compiler. */
export const WARM_UP_LINES = 1_500;
/** Every other write carries this many lines (one read, one batch); the rest carry one. */
const BURST = 50;
const MARK = "warm-up line ";

const encoder = new TextEncoder();

/**
 * Runs the warm-up; resolves with the number of lines relayed (0 when it
 * could not run, e.g. without permission to listen on loopback).
 */
export async function warmUp(): Promise<number> {
  let listener: Deno.Listener;
  try {
    listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  } catch {
    return 0;
  }
  // The operator's log as the real one is made, writing nowhere.
  const log = new ServerConsole(
    new OutputBuffer({ write: (p: Uint8Array) => Promise.resolve(p.length) }),
    { styler: new Styler({ color: false }) },
  );
  const server = new ChatServer(listener, { relay: true, history: 0, log, store: new WarmStore() });
  const clients: Deno.TcpConn[] = [];
  const timeout = new AbortController();
  const deadline = timeout.signal;
  const timer = setTimeout(() => timeout.abort(), WARM_UP_TIMEOUT_MS);
  let relayed = 0;
  try {
    const port = (listener.addr as Deno.NetAddr).port;
    for (let i = 0; i < WARM_UP_CLIENTS; i++) {
      clients.push(await Deno.connect({ hostname: "127.0.0.1", port }));
    }
    // Each client hears every sender but itself.
    const expected = (i: number) =>
      (i < WARM_UP_SENDERS ? WARM_UP_SENDERS - 1 : WARM_UP_SENDERS) * WARM_UP_LINES;
    const readers = clients.map((conn, i) => countLines(conn, expected(i), deadline));
    await Promise.all(clients.slice(0, WARM_UP_SENDERS).map((conn, i) => send(conn, i, deadline)));
    relayed = (await Promise.all(readers)).reduce((t, n) => t + n, 0);
  } catch {
    // A warm-up that failed or ran out of time changes nothing: the server starts as it is.
  } finally {
    clearTimeout(timer);
    for (const conn of clients) closeQuietly(conn);
    await server.shutdown();
    await log.out.drained();
  }
  return relayed;
}

/**
 * The memory store, whose relayed lines also go through the SQLite store's
 * queue ({@linkcode Unwritten}) and out of it as batches for its writer,
 * which are dropped: that path is compiled too, and nothing is written. A
 * server with `--db` took 22.6 ms over its first 50 batches there (1,451 lines)
 * without this, 8.2 ms (2,069 lines) with it.
 */
class WarmStore extends MemoryStore {
  readonly #queue = new Unwritten();
  #nextId = 1;
  #spare: ArrayBuffer | null = null;

  override appendBatch(room: RoomName, from: string, batch: LineBatch): void {
    super.appendBatch(room, from, batch);
    this.#queue.addBatch(this.#nextId, room, from, batch);
    this.#nextId += batch.ends.length;
    if (this.#queue.lines >= 500) {
      this.#spare = this.#queue.take(500, this.#spare).bytes.buffer;
      this.#queue.written();
    }
  }
}

/** Sends {@linkcode WARM_UP_LINES} lines, alternating single lines and bursts. */
async function send(conn: Deno.Conn, sender: number, deadline: AbortSignal): Promise<void> {
  let sent = 0;
  while (sent < WARM_UP_LINES && !deadline.aborted) {
    const n = Math.min(WARM_UP_LINES - sent, sent % (BURST + 1) === 0 ? 1 : BURST);
    let text = "";
    for (let i = 0; i < n; i++) text += `${MARK}${sender}:${sent + i} hola, ¿qué tal?\n`;
    const bytes = encoder.encode(text);
    for (let at = 0; at < bytes.length;) at += await conn.write(bytes.subarray(at));
    sent += n;
  }
}

/** Reads until `want` warm-up lines came, the peer ended, or the deadline; returns the count. */
async function countLines(conn: Deno.Conn, want: number, deadline: AbortSignal): Promise<number> {
  const buffer = new Uint8Array(64 * 1024);
  const mark = encoder.encode(MARK);
  let seen = 0;
  let carry = new Uint8Array(0);
  const onAbort = () => closeQuietly(conn);
  deadline.addEventListener("abort", onAbort, { once: true });
  try {
    while (seen < want) {
      const n = await conn.read(buffer);
      if (n === null) break;
      let bytes = buffer.subarray(0, n);
      if (carry.length > 0) {
        const joined = new Uint8Array(carry.length + n);
        joined.set(carry);
        joined.set(bytes, carry.length);
        bytes = joined;
      }
      let at = 0;
      for (let end = bytes.indexOf(0x0a); end >= 0; end = bytes.indexOf(0x0a, at)) {
        if (contains(bytes, at, end, mark)) seen++;
        at = end + 1;
      }
      carry = bytes.slice(at);
    }
  } catch {
    // Closed at the deadline.
  } finally {
    deadline.removeEventListener("abort", onAbort);
  }
  return seen;
}

/** Closes `conn`, which the deadline may have closed already. */
function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // Closed already (BadResource).
  }
}

/** Whether `bytes[from..to)` contains `needle`. */
function contains(bytes: Uint8Array, from: number, to: number, needle: Uint8Array): boolean {
  const at = bytes.subarray(from, to).indexOf(needle[0]);
  if (at < 0) return false;
  for (let i = from + at; i + needle.length <= to; i++) {
    let j = 0;
    while (j < needle.length && bytes[i + j] === needle[j]) j++;
    if (j === needle.length) return true;
  }
  return false;
}
