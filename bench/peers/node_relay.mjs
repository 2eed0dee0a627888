#!/usr/bin/env node
/**
 * The expert Node relay: the bar charla is measured against in `deno task bench`.
 *
 * It speaks charla's line protocol and keeps its guarantees: the welcome line,
 * `* ` notices (an "online" list of at most 20 names; joins and leaves announced
 * while the room has at most 100 people, as charla does), `<userN> text` relayed
 * to every other client of the sender's room (`/join #name` moves a client from
 * the lobby to room #name and is answered `* you are now in #name (<n> people)`;
 * other commands are refused), `<server> text` for each line typed on stdin, every
 * client line logged to stdout as `HH:MM:SS [#id name] text` (in both modes, as
 * charla does), and on a client's EOF a log line and a close. A line split across
 * chunks is never cut, lines are bounded (64 KiB), and control characters or
 * invalid UTF-8 never reach another client.
 *
 * The hot path is written the way an experienced Node engineer would write it
 * for speed:
 * - bytes only: lines are found with `indexOf(10)` on the chunk, never decoded;
 * - per incoming chunk, ONE Buffer holds every complete line with its `<name> `
 *   prefix, and that same Buffer goes to every other peer's `socket.write()`
 *   (libuv writes it at once or queues a reference: no copy per peer);
 * - `setNoDelay(true)`, so a small relay is not held back by Nagle;
 * - log output is gathered per event-loop turn and written in one call.
 * It has no slow-client protection: an unread peer's queue just grows.
 *
 * Usage: node bench/peers/node_relay.mjs [--host 127.0.0.1] [--port 0] [--relay]
 *                                        [--max-clients 1024]
 */

import net from "node:net";
import process from "node:process";
import { parseArgs } from "node:util";

const LF = 0x0a;
const CR = 0x0d;
const SLASH = 0x2f;
/** Longest line accepted, without its line ending (charla's default too). */
const MAX_LINE = 65_536;
/** Joins and leaves are announced only while the room has at most this many people. */
const PRESENCE_LIMIT = 100;
/** Most names in the "online" notice a newcomer gets. */
const LISTED_NAMES = 20;

const { values: flags } = parseArgs({
  args: process.argv.slice(2),
  options: {
    host: { type: "string", default: "127.0.0.1" },
    port: { type: "string", default: "0" },
    relay: { type: "boolean", default: false },
    "max-clients": { type: "string", default: "1024" },
  },
});
const relay = flags.relay;
const maxClients = Number(flags["max-clients"]);

/** Connected peers, in the order they joined (a Set iterates in insertion order). */
const peers = new Set();
/** Where everyone starts; `/join` moves a peer to a named room (one room at a time). */
const lobby = { name: "", members: new Set() };
/** Named rooms by "#name"; never removed (this is a bench peer). */
const rooms = new Map();
const ROOM_NAME = /^#[A-Za-z0-9_-]{1,32}$/;
let nextId = 1;

// ---------------------------------------------------------------------------
// Sanitizing. The common line is printable ASCII and is copied as it is; only a
// line holding another byte takes the slow path, with charla's result: C0
// controls in caret notation, DEL as ^?, C1 controls and invalid UTF-8 as U+FFFD.

/** Whether `buf[start..end)` is printable ASCII or TAB only. */
function isPlain(buf, start, end) {
  for (let i = start; i < end; i++) {
    const b = buf[i];
    if ((b < 0x20 && b !== 0x09) || b >= 0x7f) return false;
  }
  return true;
}

/** The displayable form of `buf[start..end)`, as a Buffer (slow path). */
function sanitized(buf, start, end) {
  // toString() replaces invalid UTF-8 with U+FFFD exactly as TextDecoder does.
  const text = buf.toString("utf8", start, end).replace(
    // deno-lint-ignore no-control-regex
    /[\x00-\x08\x0a-\x1f\x7f\x80-\x9f]/g,
    (c) => {
      const code = c.charCodeAt(0);
      if (code >= 0x80) return "\uFFFD";
      return code === 0x7f ? "^?" : "^" + String.fromCharCode(code + 0x40);
    },
  );
  return Buffer.from(text);
}

// ---------------------------------------------------------------------------
// Stdout: the operator's log, one write per event-loop turn.

/** Output waiting for the end of this turn. */
let pendingOut = [];

/** Queues bytes for stdout; everything of one turn goes out in a single write. */
function output(bytes) {
  if (pendingOut.length === 0) setImmediate(flushOutput);
  pendingOut.push(bytes);
}

function flushOutput() {
  const out = pendingOut.length === 1 ? pendingOut[0] : Buffer.concat(pendingOut);
  pendingOut = [];
  process.stdout.write(out);
}

/** "HH:MM:SS " of the current local time, formatted at most once a second. */
let clockSecond = -1;
let clockText = "";
function stamp() {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== clockSecond) {
    clockSecond = second;
    const d = new Date(now);
    clockText = [d.getHours(), d.getMinutes(), d.getSeconds()]
      .map((n) => String(n).padStart(2, "0")).join(":") + " ";
  }
  return clockText;
}

/** Logs a line of the server's own. */
function log(text) {
  output(Buffer.from(`${stamp()}${text}\n`));
}

// ---------------------------------------------------------------------------
// The hot path: a chunk from a client becomes one relay Buffer and one log Buffer.

/** Bounds of the lines of the chunk being handled, reused: [start0, end0, ...]. */
let bounds = new Int32Array(2048);
/** Sanitized text of a line that needed it, by line index; almost always empty. */
const cleaned = new Map();

/**
 * Handles one chunk: completes the partial line kept from the previous chunk,
 * delivers every complete line, keeps the new partial tail.
 */
function onData(peer, chunk) {
  let data = chunk;
  if (peer.partial !== null) {
    if (peer.discarding) {
      const nl = chunk.indexOf(LF);
      if (nl === -1) return;
      peer.discarding = false;
      peer.partial = null;
      data = chunk.subarray(nl + 1);
    } else {
      data = Buffer.concat([peer.partial, chunk]);
      peer.partial = null;
    }
  }
  let count = 0;
  let pos = 0;
  let nl;
  while ((nl = data.indexOf(LF, pos)) !== -1) {
    let end = nl;
    if (end > pos && data[end - 1] === CR) end--;
    if (end - pos > MAX_LINE) {
      tooLong(peer);
    } else if (data[pos] === SLASH && data[pos + 1] !== SLASH) {
      // What came before the command goes first: /join changes where lines go.
      if (count > 0) deliver(peer, data, count);
      count = 0;
      command(peer, data.toString("utf8", pos, end));
    } else {
      if (data[pos] === SLASH) pos++; // "//text" is the text "/text"
      if (count * 2 + 2 > bounds.length) {
        const grown = new Int32Array(bounds.length * 2);
        grown.set(bounds);
        bounds = grown;
      }
      bounds[count * 2] = pos;
      bounds[count * 2 + 1] = end;
      count++;
    }
    pos = nl + 1;
  }
  if (count > 0) deliver(peer, data, count);
  if (pos < data.length) {
    if (data.length - pos > MAX_LINE + 1) {
      // Longer than any acceptable line and no end in sight: drop it up to its "\n".
      tooLong(peer);
      peer.discarding = true;
      peer.partial = EMPTY;
    } else {
      // Copied: the chunk's memory may be a slice of a larger pooled allocation.
      peer.partial = Buffer.from(data.subarray(pos));
    }
  }
}

const EMPTY = Buffer.alloc(0);

/** A line starting with "/" (not "//"): only `/join #name` is understood. */
function command(peer, line) {
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

function tooLong(peer) {
  notice(peer, `error: line longer than ${MAX_LINE} bytes was dropped`);
}

/** Relays the `count` lines of `data` (in `bounds`) to the rest of the room, and logs them. */
function deliver(peer, data, count) {
  const prefix = peer.prefix;
  const tag = peer.tag;
  const time = stamp();
  let text = 0; // bytes of text in all lines, sanitized
  for (let i = 0; i < count; i++) {
    const start = bounds[2 * i];
    const end = bounds[2 * i + 1];
    if (isPlain(data, start, end)) {
      text += end - start;
    } else {
      const clean = sanitized(data, start, end);
      cleaned.set(i, clean);
      text += clean.length;
    }
  }
  const out = relay ? Buffer.allocUnsafe(text + count * (prefix.length + 1)) : null;
  const logged = Buffer.allocUnsafe(text + count * (time.length + tag.length + 1));
  let o = 0;
  let g = 0;
  for (let i = 0; i < count; i++) {
    const start = bounds[2 * i];
    const end = bounds[2 * i + 1];
    const clean = cleaned.size === 0 ? undefined : cleaned.get(i);
    g += logged.write(time, g, "latin1");
    g += tag.copy(logged, g);
    const n = clean === undefined ? data.copy(logged, g, start, end) : clean.copy(logged, g);
    if (out !== null) {
      o += prefix.copy(out, o);
      logged.copy(out, o, g, g + n);
      o += n;
      out[o++] = LF;
    }
    g += n;
    logged[g++] = LF;
  }
  cleaned.clear();
  if (out !== null) {
    for (const other of peer.room.members) if (other !== peer) other.socket.write(out);
  }
  output(logged);
}

// ---------------------------------------------------------------------------
// Peers and notices.

/** Sends a notice ("* text") to one peer. */
function notice(peer, text) {
  peer.socket.write(`* ${text}\n`);
}

/** Sends one line to every peer but `except`, as one shared Buffer. */
function broadcast(text, except) {
  const out = Buffer.from(text);
  for (const peer of peers) if (peer !== except) peer.socket.write(out);
}

/** "online: user1, user2 and 7 more", or "nobody else is here". */
function onlineNotice(newcomer) {
  const names = [];
  for (const peer of peers) {
    if (names.length === LISTED_NAMES) break;
    if (peer !== newcomer) names.push(peer.name);
  }
  if (names.length === 0) return "nobody else is here";
  const more = peers.size - 1 - names.length;
  return `online: ${names.join(", ")}${more > 0 ? ` and ${more} more` : ""}`;
}

function join(socket) {
  socket.setNoDelay(true);
  if (peers.size >= maxClients) {
    socket.end("* server full\n");
    return;
  }
  const id = nextId++;
  const name = `user${id}`;
  const peer = {
    id,
    name,
    socket,
    /** `<userN> `, copied in front of every relayed line. */
    prefix: Buffer.from(`<${name}> `),
    /** `[#N userN] `, copied into every log line after the time. */
    tag: Buffer.from(`[#${id} ${name}] `),
    /** Bytes of an incomplete line from earlier chunks, or null. */
    partial: null,
    /** True while dropping the rest of an over-long line. */
    discarding: false,
    /** The room whose members get this peer's lines. */
    room: lobby,
  };
  peers.add(peer);
  lobby.members.add(peer);
  log(`* #${id} ${name} joined from ${socket.remoteAddress}:${socket.remotePort}`);
  notice(peer, `welcome, you are ${name}`);
  if (relay) {
    notice(peer, onlineNotice(peer));
    if (peers.size <= PRESENCE_LIMIT) broadcast(`* ${name} joined\n`, peer);
  } else {
    notice(peer, "you are talking with the operator of this server");
  }

  socket.on("data", (chunk) => onData(peer, chunk));
  socket.on("end", () => {
    // Half-close: a last line without "\n" still counts; then log the leave and close.
    if (peer.partial !== null && !peer.discarding) onData(peer, Buffer.from("\n"));
    leave(peer);
    socket.end();
  });
  socket.on("error", () => leave(peer));
  socket.on("close", () => leave(peer));
}

function leave(peer) {
  if (!peers.delete(peer)) return;
  peer.room.members.delete(peer);
  log(`* #${peer.id} ${peer.name} left`);
  if (relay && peers.size <= PRESENCE_LIMIT) broadcast(`* ${peer.name} left\n`, null);
}

// ---------------------------------------------------------------------------
// The operator console: each stdin line goes to every client as "<server> text".

let stdinPartial = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (text) => {
  const lines = (stdinPartial + text).split("\n");
  stdinPartial = lines.pop();
  for (const line of lines) {
    const bytes = Buffer.from(line.endsWith("\r") ? line.slice(0, -1) : line);
    const clean = sanitized(bytes, 0, bytes.length);
    if (clean.length === 0) continue;
    broadcast(`<server> ${clean}\n`, null);
    log(`[server] ${clean}`);
  }
});

const server = net.createServer({ allowHalfOpen: true, noDelay: true }, join);
server.listen({ host: flags.host, port: Number(flags.port) }, () => {
  const { address, port } = server.address();
  process.stdout.write(`listening on ${address}:${port}\n`);
});
