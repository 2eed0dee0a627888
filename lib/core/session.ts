/**
 * One client of a chat server, from join to leave: its name, the lines it sends
 * (the relay's hot path), the commands it types, and flood control.
 *
 * @module
 */

import type { Connection, ReadSink } from "../net/connection.ts";
import { describeLeave, type PeerInfo, type ServerLog } from "./events.ts";
import { checkName, type Hub, type HubPeer } from "./hub.ts";
import { ByteBuilder, splitWord } from "../wire/text.ts";
import { TokenBucket } from "./token_bucket.ts";

/** What every session of one server shares. */
export interface Room {
  /** The registry of joined sessions. */
  readonly hub: Hub<Session>;
  /** Where the operator sees what happens. */
  readonly log: ServerLog;
  /** True: lines go to every other client. False: to the operator only. */
  readonly relay: boolean;
  /** Lines per second one client may send; 0 for no limit. */
  readonly flood: number;
  /** Joins and leaves are announced to the room only while it has at most this many people. */
  readonly presenceLimit: number;
  /** Set when the server shuts down: nobody is told who leaves then. */
  closing: boolean;
  /**
   * Set while some client is more than its send queue behind: every session
   * waits for it before reading on, so the relay never outruns its readers.
   */
  pause: Promise<void> | null;
  /** Told when a session's connection stops reading: the server then winds it up. */
  ended(session: Session, reason: string, error?: unknown): void;
}

/** Most names listed in a welcome; `/who` lists up to ten times more. */
const LISTED_NAMES = 20;
const SLASH = 0x2f;
const LF = 0x0a;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * The lines of the read chunk being handled, prefixed and ready to relay. One
 * builder serves every session: a chunk is handled from first line to flush()
 * without an await, so no two sessions can be halfway through at once.
 */
const batch = new ByteBuilder(64 * 1024);
/** Scratch space for sanitizing a line that is not relayed. */
const scratch = new ByteBuilder(1024);

const HELP = [
  "commands:",
  "  /nick <name>        change your name (letters, digits, _ and -; up to 32)",
  "  /who                who is online",
  "  /msg <name> <text>  a private message (to a name, or to server: the operator)",
  "  /me <action>        an action: * you <action>",
  "  /quit [message]     leave, with an optional message",
  "  /help               this list",
  "  //text              sends a line that starts with /",
];

/** Encodes a server notice: `* text\n`. */
export function notice(text: string): Uint8Array {
  return encoder.encode(`* ${text}\n`);
}

/**
 * A joined client: registered in the hub under its name, and the sink of its
 * connection's read loop.
 */
export class Session implements HubPeer, PeerInfo, ReadSink {
  /** Unique for the life of the server. */
  readonly id: number;
  /** Unique ignoring case; changed through the hub only. */
  name: string;
  /** Remote address, as people write it. */
  readonly address: string;
  /** When the client connected, in milliseconds since the epoch (a Date would cost more). */
  readonly #connectedAt = Date.now();
  /** The line-level socket. */
  readonly connection: Connection;
  readonly #room: Room;
  /**
   * `<name> ` as bytes, the prefix of this client's relayed lines: made when the
   * client first says something (many never do), dropped on rename.
   */
  #prefix: Uint8Array | null = null;
  /** Flood control, when the room has a limit. */
  readonly #bucket: TokenBucket | null;
  /** Lines dropped in the current flood, reported when it ends. */
  #dropped = 0;

  /** A session for a connection that was admitted; it joins with {@linkcode join}. */
  constructor(room: Room, connection: Connection, id: number) {
    this.#room = room;
    this.connection = connection;
    this.id = id;
    this.name = `user${id}`;
    this.address = connection.remote;
    this.#bucket = room.flood > 0 ? new TokenBucket(room.flood, performance.now()) : null;
  }

  /** When the client connected. */
  get since(): Date {
    return new Date(this.#connectedAt);
  }

  /** Queues bytes for this client; never waits. */
  send(bytes: Uint8Array): boolean {
    return this.connection.send(bytes);
  }

  /** Sends a notice (`* text`) to this client. */
  notice(text: string): void {
    this.send(notice(text));
  }

  /** Registers the session, welcomes the client and tells the room. */
  join(): void {
    const { hub, log, relay } = this.#room;
    hub.add(this);
    log.event({ event: "join", peer: this });
    this.notice(`welcome, you are ${this.name}`);
    if (!relay) {
      this.notice("you are talking with the operator of this server; /help lists commands");
      return;
    }
    this.notice(
      hub.size === 1 ? "nobody else is here" : `online: ${listNames(hub, LISTED_NAMES, this)}`,
    );
    this.#announce(notice(`${this.name} joined`));
  }

  /** Unregisters the session and tells the room why it left (see {@linkcode describeLeave}). */
  leave(reason: string): void {
    const { hub, log } = this.#room;
    if (!hub.remove(this)) return;
    log.event({ event: "leave", peer: this, reason });
    if (this.#room.relay && !this.#room.closing) {
      this.#announce(notice(describeLeave(this.name, reason)));
    }
  }

  /** A complete line from the client: a command, or text for the room or the operator. */
  line(buf: Uint8Array, start: number, end: number): void {
    // A client that is leaving (it quit, was kicked, timed out) has no more say,
    // even in lines that came in the same read as its /quit.
    if (this.connection.reason !== null) return;
    if (this.#bucket !== null && !this.#withinFloodLimit(this.#bucket)) return;
    if (buf[start] === SLASH) {
      if (end > start + 1 && buf[start + 1] === SLASH) {
        start++; // "//text" is the text "/text"
      } else {
        this.flush(); // lines before the command go out first, under the old name
        scratch.clear();
        scratch.appendSanitized(buf, start, end);
        this.#command(decoder.decode(scratch.bytes.subarray(0, scratch.length)));
        return;
      }
    }
    const log = this.#room.log;
    if (this.#room.relay) {
      // The hot path: the line is sanitized straight into the batch that flush()
      // hands, as one shared buffer, to every other client's send queue.
      batch.append(this.#prefix ??= encoder.encode(`<${this.name}> `));
      const text = batch.length;
      batch.appendSanitized(buf, start, end);
      log.message(this, batch.bytes, text, batch.length);
      batch.appendByte(LF);
    } else {
      scratch.clear();
      scratch.appendSanitized(buf, start, end);
      log.message(this, scratch.bytes, 0, scratch.length);
    }
  }

  /** A line over the limit was dropped: tell the client. */
  overlong(): void {
    const limit = this.connection.decoder.maxLine;
    this.notice(`error: line longer than ${limit} bytes was dropped`);
    this.#room.log.event({
      event: "error",
      peer: this,
      message: `line longer than ${limit} bytes dropped`,
    });
  }

  /**
   * End of a read chunk: relay its lines as one buffer. Returns a promise when
   * reading must wait: some client is behind, or the operator's log is.
   */
  flush(): Promise<unknown> | undefined {
    const room = this.#room;
    if (batch.length > 0) room.hub.broadcast(batch.take(), this);
    const logReady = room.log.ready();
    if (room.pause === null) return logReady;
    return logReady === undefined ? room.pause : Promise.all([room.pause, logReady]);
  }

  /** The connection stopped reading (see `ReadSink.end`). */
  end(reason: string, error?: unknown): void {
    // An error thrown halfway through a chunk may leave this session's lines in
    // the shared batch: they must not go out with the next session's.
    if (error !== undefined) batch.clear();
    this.#room.ended(this, reason, error);
  }

  /** Takes a token from the flood bucket; false when the line must be dropped. */
  #withinFloodLimit(bucket: TokenBucket): boolean {
    // The time of the read that brought the line: one clock call per chunk, not per line.
    if (bucket.take(this.connection.lastActive)) {
      if (this.#dropped > 0) {
        this.notice(`${this.#dropped} lines were dropped by the flood limit`);
        this.#dropped = 0;
      }
      return true;
    }
    if (this.#dropped++ === 0) {
      this.notice(
        `error: flood: over ${bucket.rate} lines per second; lines are dropped until you slow down`,
      );
      this.#room.log.event({ event: "error", peer: this, message: "flood limit reached" });
    }
    return false;
  }

  /** Sends to everyone else, while the room is small enough for presence notices. */
  #announce(bytes: Uint8Array): void {
    const hub = this.#room.hub;
    if (hub.size <= this.#room.presenceLimit) hub.broadcast(bytes, this);
  }

  /** Runs a command line (it starts with "/"); errors go to this client only. */
  #command(line: string): void {
    const [word, rest] = splitWord(line.slice(1));
    const name = word.toLowerCase();
    switch (name) {
      case "nick":
        return this.#nick(rest);
      case "who":
        return this.#who();
      case "msg":
        return this.#msg(rest);
      case "me":
        return this.#me(rest);
      case "quit":
        return this.#quit(rest);
      case "help":
        for (const text of HELP) this.notice(text);
        return;
      default:
        this.notice(`error: unknown command "/${name}"; /help lists the commands`);
    }
  }

  #nick(name: string): void {
    if (name === "") return this.notice("error: usage: /nick <name>");
    if (name === this.name) return this.notice(`you are already ${name}`);
    const problem = checkName(name, this.id);
    if (problem !== null) return this.notice(`error: ${problem}; you are still ${this.name}`);
    const old = this.name;
    if (!this.#room.hub.rename(this, name)) {
      return this.notice(`error: the name "${name}" is taken; you are still ${old}`);
    }
    this.#prefix = null;
    this.notice(`you are now ${name}`);
    this.#room.log.event({ event: "nick", peer: this, from: old });
    if (this.#room.relay) this.#announce(notice(`${old} is now ${name}`));
  }

  #who(): void {
    if (!this.#room.relay) return this.notice("error: /who needs a chat room (server --relay)");
    const hub = this.#room.hub;
    this.notice(`online (${hub.size}): ${listNames(hub, LISTED_NAMES * 10)}`);
  }

  #msg(args: string): void {
    const [target, text] = splitWord(args);
    if (target === "" || text === "") return this.notice("error: usage: /msg <name> <text>");
    const log = this.#room.log;
    if (target.toLowerCase() === "server") {
      log.event({ event: "private", from: this, to: null, text });
      this.send(encoder.encode(`-> *server* ${text}\n`));
      return;
    }
    if (!this.#room.relay) {
      return this.notice("error: here you can only /msg server (other clients need --relay)");
    }
    const to = this.#room.hub.find(target);
    if (to === undefined) {
      return this.notice(`error: nobody here is called "${target}"`);
    }
    if (to === this) return this.notice("error: that is you");
    to.send(encoder.encode(`*${this.name}* ${text}\n`));
    log.event({ event: "private", from: this, to, text });
    this.send(encoder.encode(`-> *${to.name}* ${text}\n`));
  }

  #me(action: string): void {
    if (action === "") return this.notice("error: usage: /me <action>");
    this.#room.log.event({ event: "action", peer: this, text: action });
    if (this.#room.relay) this.#room.hub.broadcast(notice(`${this.name} ${action}`), this);
  }

  #quit(message: string): void {
    this.notice("goodbye");
    // The read loop ends when the connection closes; leave() then tells the room.
    void this.connection.end(message === "" ? "quit" : `quit: ${message}`, 1000);
  }
}

/**
 * `a, b, c and 12 more`: the first `most` names in the hub, but `except`. Walks
 * only as far as it lists: with 10,000 people in the room a join must not copy
 * the registry.
 */
function listNames(hub: Hub<Session>, most: number, except?: Session): string {
  const names: string[] = [];
  for (const peer of hub.peers()) {
    if (names.length === most) break;
    if (peer !== except) names.push(peer.name);
  }
  const total = hub.size - (except === undefined ? 0 : 1);
  return total > most ? `${names.join(", ")} and ${total - most} more` : names.join(", ");
}
