/**
 * Warms the relay path before the first client connects: throwaway
 * {@linkcode ChatServer}s on ephemeral loopback ports, clients of this same
 * process, and a few thousand lines between them, so that the functions every
 * relayed line goes through (reading, framing, sanitizing, the room's fan-out,
 * the send queue, the operator's log, and the queue the SQLite store keeps
 * lines in until they are written) are compiled by V8's optimizing tiers
 * before real people wait on them. Without it, most of the slow lines of a
 * fresh server fell in its first few hundred milliseconds (JIT tiers and the
 * first scavenges): `deno task bench`, latency scenario.
 *
 * It never holds the start for long ({@linkcode WARM_UP_TIMEOUT_MS} at most;
 * about 0.45 s here, and a failure only ends the warm-up) and leaves nothing
 * behind: its servers, clients and logs are closed before it returns.
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
/** Clients of the second server, of which {@linkcode WARM_UP_PACED_SENDERS} send. */
export const WARM_UP_PACED_CLIENTS = 20;
/** At most 10: the client watching the lines tells their senders apart by one digit. */
export const WARM_UP_PACED_SENDERS = 4;
/** Lines each sender of the second server sends, one at a time. */
export const WARM_UP_PACED_LINES = 1_000;
/** Every other write carries this many lines (one read, one batch); the rest carry one. */
const BURST = 50;
const MARK = "warm-up line ";

const encoder = new TextEncoder();

/**
 * Runs the warm-up; resolves with the number of lines relayed (0 when it
 * could not run, e.g. without permission to listen on loopback).
 *
 * Two throwaway servers, one after the other: the first relays bursts (many
 * lines a read), the second lines sent one at a time (one line a read, each
 * relayed to every other client: the path a person typing takes, and the one
 * the per-write code is hot on). Two servers, not one, because V8 records the
 * classes (maps) of the values in an object's fields and drops compiled code
 * that relied on them when another object of the same class gets a value of
 * another map: the first server's objects are made before their fields got
 * their final representations (times become doubles on the first line), the
 * second server's after, as the real server's are. With one server,
 * `--trace-opt --trace-deopt` showed the relay path compiled again once the
 * real server was made.
 */
export async function warmUp(): Promise<number> {
  const timeout = new AbortController();
  const deadline = timeout.signal;
  const timer = setTimeout(() => timeout.abort(), WARM_UP_TIMEOUT_MS);
  try {
    const bursts = await onThrowawayServer(new WarmStore(), (port) => sendBursts(port, deadline));
    if (bursts === 0) return 0;
    return bursts + await onThrowawayServer(new MemoryStore(), (port) => sendPaced(port, deadline));
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Runs `traffic` against a relay-mode {@linkcode ChatServer} on an ephemeral
 * loopback port, logging as the real one does but nowhere; shuts it down after.
 * Resolves with what `traffic` returned, or 0 when it could not run.
 */
async function onThrowawayServer(
  store: MemoryStore,
  traffic: (port: number) => Promise<number>,
): Promise<number> {
  let listener: Deno.Listener;
  try {
    listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  } catch {
    return 0;
  }
  const log = new ServerConsole(
    new OutputBuffer({ write: (p: Uint8Array) => Promise.resolve(p.length) }),
    { styler: new Styler({ color: false }) },
  );
  const server = new ChatServer(listener, { relay: true, history: 0, log, store });
  try {
    return await traffic((listener.addr as Deno.NetAddr).port);
  } catch {
    // A warm-up that failed or ran out of time changes nothing: the server starts as it is.
    return 0;
  } finally {
    await server.shutdown();
    await log.out.drained();
  }
}

/** Opens `count` connections to `port`; closes them all when one fails. */
async function connectAll(port: number, count: number): Promise<Deno.TcpConn[]> {
  const clients: Deno.TcpConn[] = [];
  try {
    for (let i = 0; i < count; i++) {
      clients.push(await Deno.connect({ hostname: "127.0.0.1", port }));
    }
  } catch (error) {
    for (const conn of clients) closeQuietly(conn);
    throw error;
  }
  return clients;
}

/** How many warm-up lines client `i` hears: those of every sender but itself. */
function heard(i: number, senders: number, lines: number): number {
  return (i < senders ? senders - 1 : senders) * lines;
}

/**
 * {@linkcode WARM_UP_SENDERS} of {@linkcode WARM_UP_CLIENTS} clients send
 * {@linkcode WARM_UP_LINES} lines each, alternating single lines and bursts;
 * resolves with the lines the clients received.
 */
async function sendBursts(port: number, deadline: AbortSignal): Promise<number> {
  const clients = await connectAll(port, WARM_UP_CLIENTS);
  try {
    const readers = clients.map((conn, i) =>
      countLines(conn, heard(i, WARM_UP_SENDERS, WARM_UP_LINES), deadline)
    );
    await Promise.all(
      clients.slice(0, WARM_UP_SENDERS).map((conn, i) => sendLines(conn, i, deadline)),
    );
    return (await Promise.all(readers)).reduce((t, n) => t + n, 0);
  } finally {
    for (const conn of clients) closeQuietly(conn);
  }
}

/**
 * {@linkcode WARM_UP_PACED_SENDERS} of {@linkcode WARM_UP_PACED_CLIENTS}
 * clients send {@linkcode WARM_UP_PACED_LINES} lines each, one at a time: a
 * sender's next line goes once the first client that does not send has read
 * its last one, so the server reads every line apart. Resolves with the lines
 * the clients received.
 */
async function sendPaced(port: number, deadline: AbortSignal): Promise<number> {
  const senders = WARM_UP_PACED_SENDERS;
  const lines = WARM_UP_PACED_LINES;
  const clients = await connectAll(port, WARM_UP_PACED_CLIENTS);
  // Sender i waits on arrived[i] for its last line to reach the watching client.
  const arrived: ((() => void) | null)[] = new Array(senders).fill(null);
  const arrive = (sender: number) => {
    const resolve = arrived[sender];
    arrived[sender] = null;
    resolve?.();
  };
  const releaseAll = () => arrived.forEach((_, i) => arrive(i));
  deadline.addEventListener("abort", releaseAll, { once: true });
  try {
    const readers = clients.map((conn, i) =>
      countLines(conn, heard(i, senders, lines), deadline, i === senders ? arrive : undefined)
    );
    await Promise.all(
      clients.slice(0, senders).map(async (conn, sender) => {
        for (let n = 0; n < lines && !deadline.aborted; n++) {
          const seen = new Promise<void>((resolve) => arrived[sender] = resolve);
          await writeAll(conn, encoder.encode(`${MARK}${sender}:${n} hola, ¿qué tal?\n`));
          await seen;
        }
      }),
    );
    return (await Promise.all(readers)).reduce((t, n) => t + n, 0);
  } finally {
    deadline.removeEventListener("abort", releaseAll);
    for (const conn of clients) closeQuietly(conn);
  }
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
async function sendLines(conn: Deno.Conn, sender: number, deadline: AbortSignal): Promise<void> {
  let sent = 0;
  while (sent < WARM_UP_LINES && !deadline.aborted) {
    const n = Math.min(WARM_UP_LINES - sent, sent % (BURST + 1) === 0 ? 1 : BURST);
    let text = "";
    for (let i = 0; i < n; i++) text += `${MARK}${sender}:${sent + i} hola, ¿qué tal?\n`;
    await writeAll(conn, encoder.encode(text));
    sent += n;
  }
}

/** Writes all of `bytes`. */
async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) at += await conn.write(bytes.subarray(at));
}

/** Reads until `want` warm-up lines came, the peer ended, or the deadline; returns the count. */
async function countLines(
  conn: Deno.Conn,
  want: number,
  deadline: AbortSignal,
  onLine?: (sender: number) => void,
): Promise<number> {
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
        const found = indexOfMark(bytes, at, end, mark);
        if (found >= 0) {
          seen++;
          onLine?.(bytes[found + mark.length] - 48);
        }
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

/** Where `needle` starts in `bytes[from..to)`, or -1. */
function indexOfMark(bytes: Uint8Array, from: number, to: number, needle: Uint8Array): number {
  const at = bytes.subarray(from, to).indexOf(needle[0]);
  if (at < 0) return -1;
  for (let i = from + at; i + needle.length <= to; i++) {
    let j = 0;
    while (j < needle.length && bytes[i + j] === needle[j]) j++;
    if (j === needle.length) return i;
  }
  return -1;
}
