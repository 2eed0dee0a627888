/**
 * The line protocol transport: one TCP, TLS or Unix connection of nc, telnet
 * or client.ts, as a {@linkcode Peer} of the core. Plain lines are said in the
 * person's room through the core's hot path; lines starting with `/` are
 * commands (see core/commands.ts); `//text` says `/text`.
 *
 * @module
 */

import type { ChatCore } from "../core/chat.ts";
import { type CommandShare, CommandTime, parseCommand } from "../core/commands.ts";
import type { ChatEvent, LineKind } from "../core/messages.ts";
import type { Peer, WireFormat } from "../core/peer.ts";
import type { Session } from "../core/session.ts";
import { hostOf } from "../core/bans.ts";
import type { ConnectionHandler, Refusal } from "../net/acceptor.ts";
import { PASSWORD_REQUEST } from "../core/password.ts";
import { type CloseReason, Connection, message, type ReadSink } from "../net/connection.ts";
import { ByteBuilder } from "../wire/text.ts";
import { HeldInput } from "./held_input.ts";
import { JSON_LINES_FORMAT } from "./json_format.ts";
import { encodeEvent, LINE_FORMAT, renderEvent } from "./line_format.ts";

const SLASH = 0x2f;
const LF = 0x0a;
const decoder = new TextDecoder();
/** Scratch space for a command line, made safe before it is parsed. */
const scratch = new ByteBuilder(1024);

// Replies (events for one person) are rendered into one shared buffer and go
// out as one chunk when the handler that made them is done: a /help is one
// allocation and one write, not one per line. Small typed arrays are what a
// busy server allocates most (about 3 µs each with the GC work they cause,
// measured here), so this matters for command floods. The buffer belongs to
// one peer at a time; anything else sent to that peer flushes it first, so
// order holds.

/** Rendered replies waiting for {@linkcode replyPeer}. */
const replies = new ByteBuilder(16 * 1024);
/** Whose replies are in the buffer. */
let replyPeer: LinePeer | null = null;
let replyFlushScheduled = false;
/** Past this many bytes, replies go out at once. */
const REPLY_FLUSH = 64 * 1024;

function flushReplies(): void {
  const peer = replyPeer;
  replyPeer = null;
  // Direct: made for this peer alone, so they count against its own budget
  // and never hold a room (see Connection.send).
  if (peer !== null && replies.length > 0) peer.connection.send(replies.take(), true);
  replies.clear();
}

function flushScheduledReplies(): void {
  replyFlushScheduled = false;
  flushReplies();
}

/** Options for {@linkcode LinePeer}. */
export interface LinePeerOptions {
  /** Longest line accepted, in bytes. @default {65536} */
  maxLine?: number;
  /** Bytes queued past which the person is behind. @default {1048576} */
  sendQueue?: number;
  /** How the person is connected, for the console: `line`, `tls`, `unix`. @default {"line"} */
  transport?: string;
  /** Milliseconds a closing connection may take to write what is queued. @default {5000} */
  drainTimeout?: number;
  /** Milliseconds a line may take from its first byte to its end; 0: no limit. @default {0} */
  lineTimeout?: number;
  /** Called once the connection is closed and forgotten. */
  onClosed?: () => void;
  /**
   * Milliseconds a client has to send the password, on a server that has one:
   * until it sends `/pass <password>`, nothing else it sends counts and it is
   * not in the chat. @default {60000}
   */
  loginTimeout?: number;
  /** The share of server time this person's commands may take. @default `COMMAND_SHARE` */
  commandTime?: CommandShare;
}

/** What a client that sends something else before the password reads. */
const PASSWORD_FIRST = "send /pass <password> first";
const PASS = /^\/pass(?: |$)/i;

/**
 * One line-protocol connection attached to the core. It reads the connection
 * (its read loop calls the methods of {@linkcode ReadSink}) and is the
 * session's {@linkcode Peer}.
 */
export class LinePeer implements Peer<Uint8Array>, ReadSink {
  /** Text lines, until the client asks for JSON lines with `/json` (client.ts does). */
  format: WireFormat<Uint8Array> = LINE_FORMAT;
  readonly transport: string;
  readonly singleRoom = true;
  /** The socket, at the level of lines. */
  readonly connection: Connection;
  /**
   * The person, once attached: at once, or, on a server with a password,
   * once the client gave it. Until then no method that needs it runs.
   */
  session!: Session;
  readonly #core: ChatCore;
  readonly #drainTimeout: number;
  readonly #onClosed: (() => void) | undefined;
  /**
   * Lines that arrived while a command finishes later (a name claimed in a
   * shared store), the password is checked, or this person's commands wait
   * for their share of server time: they run after it, in order.
   */
  readonly #held = new HeldInput({
    mustWait: (line) => line[0] === SLASH ? this.#mustWait() : undefined,
    handle: (line) => this.#handle(line, 0, line.length),
    flushOut: () => {
      if (replyPeer === this) flushReplies();
    },
    drained: () => this.session.flush(),
    gone: () => this.#ended,
  });
  /** Server time this person's commands may still take. */
  readonly #commandTime: CommandTime;
  /** Whether this client must still give the password. */
  #locked: boolean;
  /** Ends a connection that does not give the password in time. */
  #loginTimer: ReturnType<typeof setTimeout> | undefined;
  /** Set once the read loop ended: a password check that lands later attaches nobody. */
  #ended = false;

  /**
   * Attaches a connection to the core (the person is welcomed at once) and
   * starts reading it.
   */
  constructor(core: ChatCore, conn: Deno.Conn, options: LinePeerOptions = {}) {
    this.#core = core;
    this.#commandTime = new CommandTime(options.commandTime);
    this.connection = new Connection(conn, {
      maxLine: options.maxLine,
      sendQueue: options.sendQueue,
      telnet: true,
      lineTimeout: options.lineTimeout,
      onBehind: (_, behind) => this.session?.setBehind(behind),
      onSharedBehind: (_, behind) => this.session?.setHolding(behind),
    });
    this.transport = options.transport ?? "line";
    this.#drainTimeout = options.drainTimeout ?? 5000;
    this.#onClosed = options.onClosed;
    this.#locked = core.passwordRequired;
    if (!this.#locked) this.#attach();
    else {
      this.connection.send(encodeEvent({ type: "info", text: PASSWORD_REQUEST }));
      const timeout = options.loginTimeout ?? 60_000;
      this.#loginTimer = setTimeout(() => {
        const late = `no password given in ${timeout / 1000} s`;
        this.#refuse(late, late);
      }, timeout);
    }
    this.connection.read(this);
  }

  /** Puts the person in the chat: attached to the core and welcomed. */
  #attach(): void {
    this.session = this.#core.attach(this);
    this.#core.welcome(this.session);
  }

  get address(): string {
    return this.connection.remote;
  }

  get written(): number {
    return this.connection.written;
  }

  send(encoded: Uint8Array): void {
    if (replyPeer === this) flushReplies(); // what was delivered before goes first
    this.connection.send(encoded);
  }

  deliver(event: ChatEvent): void {
    if (replyPeer !== this) {
      flushReplies();
      replyPeer = this;
    }
    if (this.format === JSON_LINES_FORMAT) {
      replies.appendText(JSON.stringify(event));
      replies.appendByte(LF);
    } else {
      for (const line of renderEvent(event)) {
        replies.appendText(line);
        replies.appendByte(LF);
      }
    }
    if (replies.length >= REPLY_FLUSH) flushReplies();
    else if (!replyFlushScheduled) {
      replyFlushScheduled = true;
      queueMicrotask(flushScheduledReplies);
    }
  }

  echoes(kind: LineKind): boolean {
    // "/me waves" shows the sender what the room saw; a plain line is on the
    // sender's screen already.
    return kind === "action";
  }

  disconnect(reason: string, now = false): void {
    if (replyPeer === this) flushReplies(); // the goodbye goes before the end
    if (now) this.connection.close(reason);
    else void this.connection.end(reason, this.#drainTimeout);
  }

  // What the connection's read loop calls.

  line(buf: Uint8Array, start: number, end: number): void {
    // The time of the read (before the password there is no session yet).
    if (this.session !== undefined) this.session.lastActive = this.connection.lastActive;
    // Commands wait for their sender to catch up (their replies are its own
    // to read) and for its share of server time; a plain line goes on, as it
    // adds nothing to its sender's queue (the read loop waits after the read).
    const held = this.#held;
    if (!held.holding && buf[start] === SLASH && this.session !== undefined) {
      const wait = this.#mustWait();
      if (wait !== undefined) held.wait(wait);
    }
    if (held.holding) return held.push(buf, start, end);
    this.#handle(buf, start, end);
  }

  /**
   * Undefined when this person's next line may run now. Otherwise what it
   * must wait for: their catching up, when they are behind (say, on replies
   * to a flood of `/who`); or time, when their commands used up their share
   * of the server's. Replies to one's own commands cost one's own queue and
   * time, never grow without bound, and never hold anyone else.
   */
  #mustWait(): Promise<unknown> | undefined {
    if (this.session.leaving !== null) return undefined;
    if (this.session.behind) return this.session.caughtUp();
    return this.#commandTime.wait();
  }

  lineTimedOut(ms: number): void {
    if (this.session === undefined) return; // before the password: nothing to say
    this.session.error("line_timeout", `no end of line in ${ms / 1000} s: disconnecting`);
    if (replyPeer === this) flushReplies();
  }

  telnetOverlong(bytes: number): void {
    if (this.session === undefined) return;
    this.session.error(
      "telnet",
      `telnet subnegotiation without its end (IAC SE): ${bytes} bytes were dropped`,
    );
  }

  overlong(): void {
    if (this.session === undefined) return; // before the password: nothing to say
    const limit = this.connection.decoder.maxLine;
    this.session.error("too_long", `line longer than ${limit} bytes was dropped`);
    this.#core.log.event({
      event: "error",
      peer: this.session,
      message: `line longer than ${limit} bytes dropped`,
    });
  }

  flush(): Promise<unknown> | undefined {
    // Replies to this read's commands go out now, so they count against this
    // person's own queue before deciding whether to read on.
    if (replyPeer === this) flushReplies();
    // Before the password there is no session; while it is checked, the held
    // input holds the read loop.
    return this.#held.andHeld(this.session?.flush());
  }

  end(reason: CloseReason, error?: unknown): void {
    void this.#close(reason, error);
  }

  /** The read loop ended: the person leaves, what is queued is written, the socket closes. */
  async #close(reason: CloseReason, error?: unknown): Promise<void> {
    this.#ended = true;
    clearTimeout(this.#loginTimer);
    const session = this.session as Session | undefined;
    try {
      if (error !== undefined) {
        this.#core.log.event({
          event: "error",
          peer: session ?? null,
          message: session === undefined
            ? `${this.connection.remote}: ${message(error)}`
            : message(error),
        });
      }
      session?.closed(this.connection.reason ?? reason);
      // Replies still queued (say, to a /who just before the end of input) go out first.
      await this.connection.end(reason, this.#drainTimeout);
    } catch (failure) {
      this.#core.log.event({ event: "error", peer: session ?? null, message: message(failure) });
    } finally {
      this.#commandTime.stop();
      this.connection.close();
      this.#onClosed?.();
    }
  }

  /** One complete line: a command, or something said in the person's room. */
  #handle(buf: Uint8Array, start: number, end: number): void {
    if (this.#locked) return this.#login(buf, start, end);
    if (buf[start] === SLASH) {
      if (end > start + 1 && buf[start + 1] === SLASH) {
        start++; // "//text" is the text "/text"
      } else {
        const started = performance.now();
        scratch.clear();
        scratch.appendSanitized(buf, start, end);
        const line = decoder.decode(scratch.bytes.subarray(0, scratch.length));
        if (line.toLowerCase() === "/json") return this.#switchToJson();
        const command = parseCommand(line);
        if ("error" in command) {
          this.session.error(command.error, command.text);
          return this.#commandTime.charge(started);
        }
        const later = this.session.run(command);
        this.#commandTime.charge(started);
        if (later instanceof Promise) this.#held.until(later);
        return;
      }
    }
    this.session.say(buf, start, end);
  }

  /**
   * A line before the password was given: `/pass <password>` is checked (the
   * lines after it wait for the answer), `/quit` leaves, anything else is
   * refused.
   */
  #login(buf: Uint8Array, start: number, end: number): void {
    // The password as sent, not made safe: it is compared, never shown.
    const line = decoder.decode(buf.subarray(start, end));
    if (!PASS.test(line)) {
      if (/^\/quit\b/i.test(line)) return this.#refuse("quit before the password", null);
      this.connection.send(encodeEvent({ type: "error", code: "password", text: PASSWORD_FIRST }));
      return;
    }
    const host = hostOf(this.connection.remote) ?? this.connection.remote;
    this.#held.until(this.#core.verifyPassword(host, line.slice(6)), (verdict) => {
      if (this.#ended) return false;
      if (!verdict.ok) {
        this.#refuse(
          verdict.reason === "wrong" ? "wrong password" : "too many wrong passwords",
          verdict.text,
        );
        return false;
      }
      clearTimeout(this.#loginTimer);
      this.#locked = false;
      this.#attach();
      return true;
    });
  }

  /**
   * Turns away a client that did not give the password: logs `reason`, tells
   * it `text` (null: nothing) and closes.
   */
  #refuse(reason: string, text: string | null): void {
    if (this.#ended || this.connection.reason !== null) return;
    this.#core.log.event({ event: "refused", address: this.connection.remote, reason });
    if (text !== null) this.connection.send(encodeEvent({ type: "info", text }));
    void this.connection.end(reason, 1000);
  }

  /**
   * From now on, every event goes out as a JSON line (see json_format.ts);
   * what was sent as text so far is sent again as JSON: the welcome, and each
   * room with its history.
   */
  #switchToJson(): void {
    if (this.format === JSON_LINES_FORMAT) return;
    const from = this.format;
    this.format = JSON_LINES_FORMAT;
    const session = this.session;
    for (const room of session.rooms) room.reformat(session, from);
    this.#core.resume(session);
  }
}

/** Options for {@linkcode lineTransport}. */
export interface LineTransportOptions {
  /** Longest line accepted, in bytes. @default {65536} */
  maxLine?: number;
  /** Bytes queued past which a person is behind. @default {1048576} */
  sendQueue?: number;
  /** Milliseconds a closing connection may take to write what is queued. @default {5000} */
  drainTimeout?: number;
  /** Milliseconds a line may take from its first byte to its end; 0: no limit. @default {0} */
  lineTimeout?: number;
  /** The share of server time each person's commands may take. @default `COMMAND_SHARE` */
  commandTime?: CommandShare;
}

/** What a refused line client reads before the connection closes. */
const REFUSALS: Record<Refusal, string> = {
  denied: "access denied",
  full: "server full",
  crowded: "too many connections from your address",
  banned: "you are banned",
};

/**
 * The line protocol as a {@linkcode ConnectionHandler}: every admitted
 * connection becomes a {@linkcode LinePeer}; a refused one is told why.
 */
export function lineTransport(
  core: ChatCore,
  options: LineTransportOptions = {},
): ConnectionHandler {
  return {
    transport: "line",
    accept(conn, release) {
      new LinePeer(core, conn, {
        ...options,
        transport: conn.remoteAddr.transport === "unix"
          ? "unix"
          : "handshake" in conn
          ? "tls"
          : "line",
        onClosed: release,
      });
    },
    async refuse(conn, why, text, timeoutMs = 1000) {
      const connection = new Connection(conn);
      connection.send(encodeEvent({ type: "info", text: text ?? REFUSALS[why] }));
      await connection.end(why, timeoutMs);
    },
  };
}
