/**
 * The chat server: accept loop, admission (access rules, client limit, TLS
 * handshake), one task per connection, idle timeouts, the operator's actions,
 * and graceful shutdown.
 *
 * @module
 */

import type { AccessList } from "./net/cidr.ts";
import {
  Connection,
  DEFAULT_SEND_QUEUE,
  formatAddress,
  isConnectionError,
  message,
} from "./net/connection.ts";
import { type PeerInfo, type ServerLog, SILENT_LOG } from "./core/events.ts";
import { Hub } from "./core/hub.ts";
import { notice, type Room, Session } from "./core/session.ts";
import { sanitizeText } from "./wire/text.ts";

/** Options for {@linkcode ChatServer}; every one has a default. */
export interface ChatServerOptions {
  /**
   * Relay mode: every line a client sends goes to every other client. Otherwise
   * clients talk with the operator only, as in the tutorial.
   * @default {false}
   */
  relay?: boolean;
  /**
   * Longest line accepted from a client, in bytes.
   * @default {65536}
   */
  maxLine?: number;
  /**
   * How far behind, in queued bytes, a client may fall. While any client is
   * further behind, the server reads from nobody (TCP pushes back on senders,
   * and nothing is lost). A client that is behind and, within `slowTimeout`,
   * catches up by less than a sixteenth of this is disconnected as too slow.
   * @default {1048576}
   */
  sendQueue?: number;
  /**
   * The window, in milliseconds, in which a client that is behind must make
   * progress (see `sendQueue`).
   * @default {500}
   */
  slowTimeout?: number;
  /**
   * Most clients connected at once; one more is told the server is full.
   * @default {1024}
   */
  maxClients?: number;
  /**
   * Milliseconds a client may stay silent before it is disconnected; 0 for never.
   * @default {0}
   */
  idleTimeout?: number;
  /**
   * Lines per second a client may send; excess lines are dropped. 0 for no limit.
   * @default {0}
   */
  flood?: number;
  /** Which addresses may connect. @default everyone */
  access?: AccessList;
  /**
   * Milliseconds that shutdown waits for queued lines to be written.
   * @default {5000}
   */
  drainTimeout?: number;
  /**
   * Milliseconds a TLS client has to complete its handshake.
   * @default {10000}
   */
  handshakeTimeout?: number;
  /**
   * Joins and leaves are announced while the room has at most this many people:
   * in a room of thousands they would be most of the traffic.
   * @default {100}
   */
  presenceLimit?: number;
  /** Where events and messages are reported. @default a log that drops everything */
  log?: ServerLog;
  /** Aborting it shuts the server down gracefully. */
  signal?: AbortSignal;
}

const encoder = new TextEncoder();

/** Pause after an accept error that is not the peer's doing (say, out of descriptors). */
const ACCEPT_BACKOFF_MS = 100;

/**
 * A chat server on an already-bound listener.
 *
 * @example A relay with two clients
 * ```ts
 * import { ChatServer } from "./chat_server.ts";
 * import assert from "node:assert/strict";
 *
 * const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const server = new ChatServer(listener, { relay: true });
 * const addr = { hostname: "127.0.0.1", port: listener.addr.port };
 * const ana = await Deno.connect(addr);
 * const bea = await Deno.connect(addr);
 * const readUntil = async (conn: Deno.Conn, text: string) => {
 *   let seen = "";
 *   const buf = new Uint8Array(1024);
 *   while (!seen.includes(text)) seen += new TextDecoder().decode(buf.subarray(0, (await conn.read(buf))!));
 *   return seen;
 * };
 * await readUntil(ana, "user2 joined");
 * await ana.write(new TextEncoder().encode("hola\n"));
 * assert.match(await readUntil(bea, "<user1> hola\n"), /<user1> hola/);
 * ana.close();
 * bea.close();
 * await server.shutdown();
 * ```
 */
export class ChatServer {
  /** The address the listener is bound to (the real port when bound to port 0). */
  readonly addr: Deno.Addr;
  /** Settles when the server has shut down and every connection is closed. */
  readonly finished: Promise<void>;
  readonly #listener: Deno.Listener;
  readonly #room: Room;
  readonly #maxLine: number | undefined;
  readonly #sendQueue: number | undefined;
  readonly #maxClients: number;
  readonly #idleTimeout: number;
  readonly #drainTimeout: number;
  readonly #handshakeTimeout: number;
  readonly #access: AccessList | undefined;
  /** Next client id; ids are never reused, so `#7` always means one client. */
  #nextId = 1;
  /** Connections being served, joined or not: what the client limit counts. */
  #active = 0;
  /** Connections accepted but not yet joined (TLS handshake): shutdown closes them. */
  readonly #admitting = new Set<Connection>();
  /** Woken when `#active` drops to 0 during shutdown. */
  #allClosed: PromiseWithResolvers<void> | null = null;
  /** The shutdown in progress, if any. */
  #shutdown: Promise<void> | null = null;
  /** The idle sweep timer, when an idle timeout is set. */
  #idleTimer: ReturnType<typeof setInterval> | undefined;
  /** The accept loop; settles once the listener is closed. */
  readonly #accepting: Promise<void>;
  readonly #slowTimeout: number;
  /**
   * Connections more than their send queue behind (while any is, nobody is
   * read), each with the start of its current progress window: when, and how
   * much had been written to it then.
   */
  readonly #behind = new Map<Connection, { since: number; written: number }>();
  /** Least progress a client that is behind must make in one slow-timeout window. */
  readonly #minProgress: number;
  /** Settles `room.pause` when `#behind` empties. */
  #resume: (() => void) | null = null;
  /** Checks `#behind` for clients that stay behind too long; runs while it is not empty. */
  #slowTimer: ReturnType<typeof setInterval> | undefined;

  /** Starts serving `listener` at once. */
  constructor(listener: Deno.Listener, options: ChatServerOptions = {}) {
    this.#listener = listener;
    this.addr = listener.addr;
    this.#room = {
      hub: new Hub<Session>(),
      log: options.log ?? SILENT_LOG,
      relay: options.relay ?? false,
      flood: nonNegative("flood", options.flood ?? 0),
      presenceLimit: nonNegative("presenceLimit", options.presenceLimit ?? 100),
      closing: false,
      pause: null,
      ended: (session, reason, error) => {
        if (error !== undefined) {
          this.#room.log.event({ event: "error", peer: session, message: message(error) });
        }
        void this.#leave(session, reason);
      },
    };
    this.#slowTimeout = nonNegative("slowTimeout", options.slowTimeout ?? 500);
    this.#minProgress = (options.sendQueue ?? DEFAULT_SEND_QUEUE) / 16;
    this.#maxLine = options.maxLine;
    this.#sendQueue = options.sendQueue;
    this.#maxClients = nonNegative("maxClients", options.maxClients ?? 1024);
    this.#idleTimeout = nonNegative("idleTimeout", options.idleTimeout ?? 0);
    this.#drainTimeout = nonNegative("drainTimeout", options.drainTimeout ?? 5000);
    this.#handshakeTimeout = nonNegative("handshakeTimeout", options.handshakeTimeout ?? 10_000);
    this.#access = options.access;
    this.#room.log.event({
      event: "listening",
      address: formatAddress(this.addr),
      relay: this.#room.relay,
    });
    if (this.#idleTimeout > 0) {
      // One sweep for all clients instead of a timer each: cheaper per idle
      // client, and reading a line costs no timer reset.
      const every = Math.max(50, Math.min(1000, this.#idleTimeout / 4));
      this.#idleTimer = setInterval(() => this.#sweepIdle(), every);
    }
    options.signal?.addEventListener("abort", () => this.shutdown(), { once: true });
    this.#accepting = this.#acceptLoop();
    this.finished = this.#accepting.then(() => this.shutdown());
  }

  /** Whether lines go to every other client. */
  get relay(): boolean {
    return this.#room.relay;
  }

  /** How many clients have joined. */
  get clientCount(): number {
    return this.#room.hub.size;
  }

  /** The joined clients, in the order they joined. */
  clients(): PeerInfo[] {
    return [...this.#room.hub.peers()];
  }

  /** The client with this name (any case) or id (`7`, `#7`). */
  find(target: string): PeerInfo | undefined {
    return this.#room.hub.find(target);
  }

  /** The operator says `text` to everyone: `<server> text`. Returns how many got it. */
  say(text: string): number {
    const clean = sanitizeText(text);
    const hub = this.#room.hub;
    hub.broadcast(encoder.encode(`<server> ${clean}\n`));
    this.#room.log.event({ event: "broadcast", text: clean });
    return hub.size;
  }

  /** The operator says `text` to one client: `*server* text`. Undefined when there is no such client. */
  whisper(target: string, text: string): PeerInfo | undefined {
    const to = this.#room.hub.find(target);
    if (to === undefined) return undefined;
    const clean = sanitizeText(text);
    to.send(encoder.encode(`*server* ${clean}\n`));
    this.#room.log.event({ event: "private", from: null, to, text: clean });
    return to;
  }

  /** Disconnects one client, telling it why. Undefined when there is no such client. */
  kick(target: string, reason = ""): PeerInfo | undefined {
    const peer = this.#room.hub.find(target);
    if (peer === undefined) return undefined;
    const clean = sanitizeText(reason);
    peer.notice(clean === "" ? "you were kicked by the operator" : `you were kicked: ${clean}`);
    this.#room.log.event({ event: "kick", peer, reason: clean });
    void peer.connection.end(clean === "" ? "kicked" : `kicked: ${clean}`, this.#drainTimeout);
    return peer;
  }

  /**
   * Shuts down gracefully: stops accepting, sends every client `* <reason>`,
   * lets what is queued be written (up to the drain timeout), closes everything.
   * Calling it again returns the same promise.
   */
  shutdown(reason = "server shutting down"): Promise<void> {
    return this.#shutdown ??= this.#shutDown(reason);
  }

  /** Shuts down: `await using server = new ChatServer(...)`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.shutdown();
  }

  async #shutDown(reason: string): Promise<void> {
    this.#room.closing = true;
    clearInterval(this.#idleTimer);
    // Reads paused for a client that is behind must not hold up the end.
    this.#behind.clear();
    this.#onCaughtUp();
    try {
      this.#listener.close();
    } catch {
      // Already closed.
    }
    for (const connection of this.#admitting) connection.close("server shutting down");
    const bytes = notice(reason);
    const ends: Promise<void>[] = [];
    for (const peer of this.#room.hub.peers()) {
      peer.send(bytes);
      ends.push(peer.connection.end("server shutting down", this.#drainTimeout));
    }
    await Promise.all(ends);
    if (this.#active > 0) {
      this.#allClosed = Promise.withResolvers();
      await this.#allClosed.promise;
    }
    // The accept loop may still be unwinding from the closed listener.
    await this.#accepting;
    this.#room.log.event({ event: "shutdown", reason });
  }

  /**
   * Accepts until the listener closes. Errors of one connection (a client that
   * reset before the accept completed: NotConnected, ConnectionAborted) must
   * not end the loop; `for await (… of listener)` would rethrow them.
   */
  async #acceptLoop(): Promise<void> {
    while (!this.#room.closing) {
      let conn: Deno.Conn;
      try {
        conn = await this.#listener.accept();
      } catch (error) {
        if (this.#room.closing || error instanceof Deno.errors.BadResource) return;
        this.#room.log.event({ event: "error", peer: null, message: `accept: ${message(error)}` });
        if (!isConnectionError(error)) {
          // Out of descriptors, say: retrying at once would spin.
          await new Promise((resolve) => setTimeout(resolve, ACCEPT_BACKOFF_MS));
        }
        continue;
      }
      void this.#serve(conn);
    }
  }

  /** Admits one connection and starts its session. Never rejects. */
  async #serve(conn: Deno.Conn): Promise<void> {
    this.#active++;
    const connection = new Connection(conn, {
      maxLine: this.#maxLine,
      sendQueue: this.#sendQueue,
      telnet: true,
      onBehind: this.#onBehind,
    });
    let session: Session | null = null;
    try {
      // A shutdown may have begun while this connection was being admitted.
      if (!await this.#admit(connection) || this.#room.closing) return this.#closed(connection);
      session = new Session(this.#room, connection, this.#nextId++);
      session.join();
      // From here the session runs in callbacks and ends in room.ended(): an
      // idle client holds no suspended function or promise (about a kilobyte
      // each, measured).
      connection.read(session);
    } catch (error) {
      // Nothing above should throw; if it does, it ends this connection only.
      this.#room.log.event({ event: "error", peer: session, message: message(error) });
      session?.leave(`error: ${message(error)}`);
      this.#closed(connection);
    }
  }

  /** A session ended: tell the room, write what is still queued, close. Never rejects. */
  async #leave(session: Session, reason: string): Promise<void> {
    const connection = session.connection;
    try {
      session.leave(connection.reason ?? reason);
      // Replies still queued (say, to a /who just before the client's end of
      // input) are written before the connection closes.
      await connection.end(reason, this.#drainTimeout);
    } catch (error) {
      this.#room.log.event({ event: "error", peer: session, message: message(error) });
    } finally {
      this.#closed(connection);
    }
  }

  /** The last step for every connection, joined or not. */
  #closed(connection: Connection): void {
    this.#admitting.delete(connection);
    connection.close();
    if (--this.#active === 0) this.#allClosed?.resolve();
  }

  /**
   * Decides whether a connection may join: the access rules, then the TLS
   * handshake, then the client limit. A refused connection is logged.
   */
  async #admit(connection: Connection): Promise<boolean> {
    const conn = connection.conn;
    const addr = conn.remoteAddr;
    if (addr.transport === "tcp") {
      if (this.#access !== undefined && !this.#access.empty) {
        const decision = this.#access.check(addr.hostname);
        if (!decision.allowed) {
          this.#refuse(connection.remote, `denied by ${decision.rule}`);
          return false;
        }
      }
      // The relay coalesces its own writes; Nagle would only add delay.
      (conn as Deno.TcpConn).setNoDelay?.(true);
    }
    if ("handshake" in conn) {
      this.#admitting.add(connection);
      const ok = await this.#handshake(conn as Deno.TlsConn, connection);
      this.#admitting.delete(connection);
      if (!ok || this.#room.closing) return false;
    }
    if (this.#active > this.#maxClients) {
      connection.send(notice("server full"));
      this.#refuse(connection.remote, "server full");
      await connection.end("server full", 1000);
      return false;
    }
    return true;
  }

  /**
   * A client fell behind, or caught up. The relay reads faster than it can write
   * to many clients; pausing every read while one client is behind keeps it
   * lossless and its memory bounded (the mark, plus at most one read per
   * client). A client that stays behind is dropped, so it cannot hold the room
   * for longer than the slow timeout.
   */
  readonly #onBehind = (connection: Connection, behind: boolean): void => {
    if (behind) {
      if (this.#room.closing) return;
      this.#behind.set(connection, { since: performance.now(), written: connection.written });
      if (this.#room.pause === null) {
        this.#room.pause = new Promise((resolve) => this.#resume = resolve);
        const every = Math.max(10, Math.min(100, this.#slowTimeout / 4));
        this.#slowTimer = setInterval(() => this.#dropSlow(), every);
      }
    } else if (this.#behind.delete(connection) && this.#behind.size === 0) {
      this.#onCaughtUp();
    }
  };

  /** Nobody is behind any more: reading goes on. */
  #onCaughtUp(): void {
    clearInterval(this.#slowTimer);
    this.#slowTimer = undefined;
    this.#room.pause = null;
    this.#resume?.();
    this.#resume = null;
  }

  /**
   * Disconnects clients that are behind and caught up too little in their last
   * window. Progress, not time alone, is the test: when many clients share a
   * bottleneck (one machine reading them all, the server's own CPU), each drains
   * slowly but steadily and must not be dropped; one that stopped reading, or
   * trickles a byte now and then to hold the room, is.
   */
  #dropSlow(): void {
    const now = performance.now();
    for (const [connection, window] of this.#behind) {
      if (now - window.since < this.#slowTimeout) continue;
      if (connection.written - window.written < this.#minProgress) {
        connection.close("too slow");
      } else {
        window.since = now;
        window.written = connection.written;
      }
    }
  }

  /** Completes a TLS handshake within the timeout; false (and logged) when it fails. */
  async #handshake(conn: Deno.TlsConn, connection: Connection): Promise<boolean> {
    const timer = setTimeout(() => connection.close("handshake timed out"), this.#handshakeTimeout);
    try {
      await conn.handshake();
      return true;
    } catch (error) {
      const reason = connection.reason ?? `TLS handshake failed: ${message(error)}`;
      this.#refuse(connection.remote, reason);
      return false;
    } finally {
      clearTimeout(timer);
    }
  }

  #refuse(address: string, reason: string): void {
    this.#room.log.event({ event: "refused", address, reason });
  }

  /** Disconnects every client silent for longer than the idle timeout. */
  #sweepIdle(): void {
    const oldest = performance.now() - this.#idleTimeout;
    for (const peer of this.#room.hub.peers()) {
      if (peer.connection.lastActive < oldest && peer.connection.reason === null) {
        peer.notice(`idle for ${this.#idleTimeout / 1000} s: disconnecting`);
        void peer.connection.end("timed out", this.#drainTimeout);
      }
    }
  }
}

function nonNegative(name: string, value: number): number {
  if (!Number.isFinite(value) || value < 0) {
    throw new RangeError(`Invalid ${name} "${value}": must be a number of at least 0`);
  }
  return value;
}
