// deno-lint-ignore-file no-console
/**
 * The bare Deno relay: the runtime's floor that charla is measured against in
 * `deno task bench`, and for idle memory the minimal `Deno.Conn` read loop.
 *
 * It speaks the same subset of charla's line protocol as the Node and C relays
 * (`node_relay.mjs`, `c_relay.c`): the welcome line, `* ` notices (an "online" list
 * of at most 20 names; joins and leaves announced while at most 100 people are
 * connected), `<userN> text` relayed to every other member of the sender's room,
 * `/join #name` answered `* you are now in #name (<n> people)` (everyone starts in
 * the lobby), `<server> text` for each line on stdin, every client line logged to
 * stdout as `HH:MM:SS [#id name] text`, lines bounded at 65,536 bytes, a last line
 * without `\n` delivered at EOF.
 *
 * It is what a competent first version on the runtime's own API looks like, and no
 * more: one `async` read loop per connection calling `conn.read()` into its own
 * buffer (1 KiB while idle, grown when a read fills it, so an idle connection holds
 * a small buffer and one pending read), lines found with `indexOf`, one prefixed
 * buffer per read shared by every recipient, and `conn.write()` per recipient,
 * looping over partial writes; what arrives for a peer while its write is in
 * flight is queued, and the queue is written buffer by buffer, each as it is.
 * (Concatenating the queue into one write was tried: copying per recipient and
 * allocating the copies cost 5 times the CPU per delivery at 100 clients.)
 * No sanitizing, no names or other commands, and no slow-client protection: a
 * peer that stops reading makes its queue grow without bound.
 *
 * The bench runs it as the README's first command runs charla, with no V8 flags:
 * `deno run --allow-net bench/peers/deno_relay.ts [--host 127.0.0.1] [--port 0]
 * [--relay] [--max-clients 1024]`
 *
 * @module
 */

import { parseArgs } from "node:util";

const LF = 0x0a;
const CR = 0x0d;
const SLASH = 0x2f;
/** Longest line accepted, without its line ending (charla's default too). */
const MAX_LINE = 65_536;
/** Read buffer of a new connection: an idle one never needs more. */
const FIRST_BUFFER = 1024;
/** The read buffer grows (x4) up to this: a whole longest line and a 64 KiB read. */
const MAX_BUFFER = 128 * 1024;
/** Joins and leaves are announced only while at most this many are connected. */
const PRESENCE_LIMIT = 100;
/** Most names in the "online" notice a newcomer gets. */
const LISTED_NAMES = 20;
const ROOM_NAME = /^#[A-Za-z0-9_-]{1,32}$/;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A room: who receives the lines of its members. */
interface Room {
  /** `#name`, or "" for the lobby. */
  readonly name: string;
  readonly members: Set<Peer>;
}

/** One connected client. */
interface Peer {
  readonly id: number;
  readonly name: string;
  readonly conn: Deno.TcpConn;
  /** `<userN> `, copied in front of every relayed line. */
  readonly prefix: Uint8Array;
  /** `[#N userN] `, copied into every log line after the time. */
  readonly tag: Uint8Array;
  room: Room;
  /** True while a `conn.write()` is in flight; what arrives meanwhile waits in `queue`. */
  writing: boolean;
  queue: Uint8Array[];
  /** Set at EOF: close once the queue is written. */
  closing: boolean;
  closed: boolean;
}

const { values: flags } = parseArgs({
  args: Deno.args,
  options: {
    host: { type: "string", default: "127.0.0.1" },
    port: { type: "string", default: "0" },
    relay: { type: "boolean", short: "r", default: false },
    "max-clients": { type: "string", default: "1024" },
  },
});
const relay = flags.relay;
const maxClients = Number(flags["max-clients"]);

/** Every peer, in the order they joined (a Set iterates in insertion order). */
const peers = new Set<Peer>();
const lobby: Room = { name: "", members: new Set() };
const rooms = new Map<string, Room>();
let nextId = 1;

// ---------------------------------------------------------------------------
// Stdout: the operator's log, written once per batch of work.

let pendingOut: Uint8Array[] = [];

/** Queues bytes for stdout; what one turn of work logs goes out in one write. */
function output(bytes: Uint8Array): void {
  if (pendingOut.length === 0) queueMicrotask(flushOutput);
  pendingOut.push(bytes);
}

function flushOutput(): void {
  const out = pendingOut.length === 1 ? pendingOut[0] : concat(pendingOut);
  pendingOut = [];
  // Blocking, as charla's log is: a log that cannot keep up slows the reading.
  for (let done = 0; done < out.length;) done += Deno.stdout.writeSync(out.subarray(done));
}

function concat(parts: Uint8Array[]): Uint8Array {
  let length = 0;
  for (const part of parts) length += part.length;
  const all = new Uint8Array(length);
  let at = 0;
  for (const part of parts) {
    all.set(part, at);
    at += part.length;
  }
  return all;
}

let clockSecond = -1;
let clockBytes = new Uint8Array(0);
/** "HH:MM:SS " of the local time as bytes, formatted at most once a second. */
function stamp(): Uint8Array {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== clockSecond) {
    clockSecond = second;
    const d = new Date(now);
    clockBytes = encoder.encode(
      [d.getHours(), d.getMinutes(), d.getSeconds()]
        .map((n) => String(n).padStart(2, "0")).join(":") + " ",
    );
  }
  return clockBytes;
}

/** Logs a line of the server's own. */
function log(text: string): void {
  output(concat([stamp(), encoder.encode(text + "\n")]));
}

// ---------------------------------------------------------------------------
// Writing: conn.write() per peer, partial writes continued, a queue while in flight.

function send(peer: Peer, bytes: Uint8Array): void {
  if (peer.closed) return;
  if (peer.writing) {
    peer.queue.push(bytes);
    return;
  }
  peer.writing = true;
  write(peer, bytes);
}

function write(peer: Peer, bytes: Uint8Array): void {
  peer.conn.write(bytes).then((n) => {
    if (n < bytes.length) return write(peer, bytes.subarray(n));
    if (peer.queue.length === 0) {
      peer.writing = false;
      if (peer.closing) close(peer);
      return;
    }
    write(peer, peer.queue.shift()!);
  }, (error) => {
    // The peer left (BrokenPipe, ConnectionReset) or was closed under the write.
    if (!isConnectionError(error)) throw error;
    close(peer);
  });
}

function isConnectionError(error: unknown): boolean {
  return error instanceof Deno.errors.BrokenPipe ||
    error instanceof Deno.errors.ConnectionReset ||
    error instanceof Deno.errors.BadResource ||
    error instanceof Deno.errors.Interrupted ||
    error instanceof Deno.errors.NotConnected;
}

function close(peer: Peer): void {
  if (peer.closed) return;
  peer.closed = true;
  peer.queue = [];
  leave(peer);
  try {
    peer.conn.close();
  } catch (error) {
    if (!(error instanceof Deno.errors.BadResource)) throw error;
  }
}

function notice(peer: Peer, text: string): void {
  send(peer, encoder.encode(`* ${text}\n`));
}

/** Sends one buffer to every peer but `except`. */
function broadcast(bytes: Uint8Array, except: Peer | null): void {
  for (const peer of peers) if (peer !== except) send(peer, bytes);
}

// ---------------------------------------------------------------------------
// Reading: one async loop per connection.

/** Line bounds of the read being handled: start0, end0, start1, ... */
let bounds = new Int32Array(4096);

/** Relays `count` lines of `buf` (in `bounds`) to the rest of the room, and logs them. */
function deliver(peer: Peer, buf: Uint8Array, count: number): void {
  if (count === 0) return;
  const time = stamp();
  const prefix = peer.prefix;
  const tag = peer.tag;
  let text = 0;
  for (let i = 0; i < count; i++) text += bounds[2 * i + 1] - bounds[2 * i];
  const logged = new Uint8Array(text + count * (time.length + tag.length + 1));
  let g = 0;
  for (let i = 0; i < count; i++) {
    logged.set(time, g);
    g += time.length;
    logged.set(tag, g);
    g += tag.length;
    logged.set(buf.subarray(bounds[2 * i], bounds[2 * i + 1]), g);
    g += bounds[2 * i + 1] - bounds[2 * i];
    logged[g++] = LF;
  }
  output(logged);
  if (!relay || peer.room.members.size < 2) return;
  const out = new Uint8Array(text + count * (prefix.length + 1));
  let o = 0;
  for (let i = 0; i < count; i++) {
    out.set(prefix, o);
    o += prefix.length;
    out.set(buf.subarray(bounds[2 * i], bounds[2 * i + 1]), o);
    o += bounds[2 * i + 1] - bounds[2 * i];
    out[o++] = LF;
  }
  for (const other of peer.room.members) if (other !== peer) send(other, out);
}

/** A line starting with "/" (not "//"). */
function command(peer: Peer, line: string): void {
  const join = /^\/join (.*)$/.exec(line);
  if (join === null) return notice(peer, "error: commands are not supported by this relay");
  const name = join[1];
  if (!ROOM_NAME.test(name)) {
    return notice(peer, "error: usage: /join #room (1-32 letters, digits, _ or -)");
  }
  let room = rooms.get(name);
  if (room === undefined) {
    room = { name, members: new Set() };
    rooms.set(name, room);
  }
  peer.room.members.delete(peer);
  peer.room = room;
  room.members.add(peer);
  notice(peer, `you are now in ${name} (${room.members.size} people)`);
}

/**
 * Handles the complete lines of `buf[pos..end)` (`buf` ends at `end`); returns where
 * the incomplete tail starts.
 */
function frame(peer: Peer, buf: Uint8Array, pos: number, end: number): number {
  let count = 0;
  let nl;
  while (pos < end && (nl = buf.indexOf(LF, pos)) !== -1) {
    let lineEnd = nl;
    if (lineEnd > pos && buf[lineEnd - 1] === CR) lineEnd--;
    if (lineEnd - pos > MAX_LINE) {
      notice(peer, `error: line longer than ${MAX_LINE} bytes was dropped`);
    } else if (buf[pos] === SLASH && lineEnd > pos && buf[pos + 1] !== SLASH) {
      // What came before the command goes first: /join changes where lines go.
      deliver(peer, buf, count);
      count = 0;
      command(peer, decoder.decode(buf.subarray(pos, lineEnd)));
    } else {
      if (buf[pos] === SLASH && lineEnd > pos) pos++; // "//text" is the text "/text"
      if (2 * count + 2 > bounds.length) {
        const grown = new Int32Array(bounds.length * 2);
        grown.set(bounds);
        bounds = grown;
      }
      bounds[2 * count] = pos;
      bounds[2 * count + 1] = lineEnd;
      count++;
    }
    pos = nl + 1;
  }
  deliver(peer, buf, count);
  return pos;
}

async function readLoop(peer: Peer): Promise<void> {
  let buf = new Uint8Array(FIRST_BUFFER);
  let carry = 0; // bytes of an incomplete line kept at buf[0..carry)
  let discarding = false; // dropping the rest of an over-long line up to its "\n"
  try {
    while (true) {
      const n = await peer.conn.read(carry === 0 ? buf : buf.subarray(carry));
      if (n === null) break;
      const end = carry + n;
      let pos = 0;
      if (discarding) {
        const nl = buf.subarray(0, end).indexOf(LF);
        if (nl < 0) {
          carry = 0;
          continue;
        }
        discarding = false;
        pos = nl + 1;
      }
      // A view that ends at the data, so indexOf cannot find a stale "\n" beyond it.
      pos = frame(peer, end === buf.length ? buf : buf.subarray(0, end), pos, end);
      carry = end - pos;
      if (carry > MAX_LINE + 1) {
        notice(peer, `error: line longer than ${MAX_LINE} bytes was dropped`);
        discarding = true;
        carry = 0;
      } else if (carry > 0 && pos > 0) {
        buf.copyWithin(0, pos, end);
      }
      if (end === buf.length && buf.length < MAX_BUFFER) {
        // The read filled the buffer: this peer sends a lot, so read more at a time.
        const grown = new Uint8Array(Math.min(buf.length * 4, MAX_BUFFER));
        grown.set(buf.subarray(0, carry));
        buf = grown;
      }
    }
    // EOF: a last line without "\n" still counts; then leave, and close once written.
    if (carry > 0 && !discarding) {
      const last = new Uint8Array(carry + 1);
      last.set(buf.subarray(0, carry));
      last[carry] = LF;
      frame(peer, last, 0, last.length);
    }
    leave(peer);
    peer.closing = true;
    if (!peer.writing) close(peer);
  } catch (error) {
    if (!isConnectionError(error)) throw error;
    close(peer);
  }
}

// ---------------------------------------------------------------------------
// Peers.

function join(conn: Deno.TcpConn): void {
  conn.setNoDelay(true);
  if (peers.size >= maxClients) {
    conn.write(encoder.encode("* server full\n")).finally(() => conn.close()).catch(() => {});
    return;
  }
  const id = nextId++;
  const name = `user${id}`;
  const peer: Peer = {
    id,
    name,
    conn,
    prefix: encoder.encode(`<${name}> `),
    tag: encoder.encode(`[#${id} ${name}] `),
    room: lobby,
    writing: false,
    queue: [],
    closing: false,
    closed: false,
  };
  peers.add(peer);
  lobby.members.add(peer);
  const { hostname, port } = conn.remoteAddr;
  log(`* #${id} ${name} joined from ${hostname}:${port}`);
  notice(peer, `welcome, you are ${name}`);
  if (relay) {
    notice(peer, onlineNotice(peer));
    if (peers.size <= PRESENCE_LIMIT) broadcast(encoder.encode(`* ${name} joined\n`), peer);
  } else {
    notice(peer, "you are talking with the operator of this server");
  }
  readLoop(peer);
}

function leave(peer: Peer): void {
  if (!peers.delete(peer)) return;
  peer.room.members.delete(peer);
  log(`* #${peer.id} ${peer.name} left`);
  if (relay && peers.size <= PRESENCE_LIMIT) {
    broadcast(encoder.encode(`* ${peer.name} left\n`), null);
  }
}

/** "online: user1, user2 and 7 more", or "nobody else is here". */
function onlineNotice(newcomer: Peer): string {
  const names: string[] = [];
  for (const peer of peers) {
    if (names.length === LISTED_NAMES) break;
    if (peer !== newcomer) names.push(peer.name);
  }
  if (names.length === 0) return "nobody else is here";
  const more = peers.size - 1 - names.length;
  return `online: ${names.join(", ")}${more > 0 ? ` and ${more} more` : ""}`;
}

// ---------------------------------------------------------------------------
// The operator console: each stdin line goes to every client as "<server> text".

async function operatorLoop(): Promise<void> {
  const buf = new Uint8Array(65_536);
  let partial = "";
  for (let n; (n = await Deno.stdin.read(buf)) !== null;) {
    const lines = (partial + decoder.decode(buf.subarray(0, n), { stream: true })).split("\n");
    partial = lines.pop()!;
    for (let line of lines) {
      if (line.endsWith("\r")) line = line.slice(0, -1);
      if (line === "") continue;
      broadcast(encoder.encode(`<server> ${line}\n`), null);
      log(`[server] ${line}`);
    }
  }
}

const listener = Deno.listen({ hostname: flags.host, port: Number(flags.port) });
Deno.stdout.writeSync(
  encoder.encode(`listening on ${listener.addr.hostname}:${listener.addr.port}\n`),
);
operatorLoop();
while (true) {
  let conn;
  try {
    conn = await listener.accept();
  } catch (error) {
    if (error instanceof Deno.errors.BadResource) break;
    // A client that connected and reset at once (NotConnected, ConnectionReset), or
    // too many open files: this one is lost, the listener goes on.
    console.error(`accept: ${error}`);
    continue;
  }
  join(conn);
}
