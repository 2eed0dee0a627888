/**
 * Accepting connections: the accept loop, and admission (the access rules,
 * the TLS handshake, the client limit) before a transport gets the connection.
 * Every listener of a server (line port, IRC port) shares one {@linkcode Gate},
 * so the client limit counts everyone.
 *
 * @module
 */

import type { AccessList } from "./cidr.ts";
import { formatAddress, isConnectionError, message } from "./connection.ts";
import type { ServerLog } from "../core/events.ts";
import { NodeTlsListener } from "./tls_server.ts";

/** After an accept error that is not one connection's (out of descriptors, say): wait this long. */
const ACCEPT_BACKOFF_MS = 100;

/**
 * Why a connection is turned away, for the transport to say in its own words:
 * an access rule, the client limit, a ban, or the per-address limit.
 */
export type Refusal = "denied" | "full" | "banned" | "crowded";

/** A ban that keeps an address out, as {@linkcode GateOptions.banned} reports it. */
export interface BanRefusal {
  /** For the log: `banned by 10.0.0.0/8`. */
  readonly reason: string;
  /** For the client: `you are banned: spam (until 18:00)`. */
  readonly text: string;
}

/**
 * Most connections being refused at once (each is told why, which may take up
 * to a second with a peer that does not read). Past it, a refused connection
 * is closed without a word, so a flood of them cannot hold descriptors.
 */
export const MAX_REFUSING = 64;
/** How long a refused connection has to read why, in milliseconds. */
const REFUSAL_MS = 1000;

/** Options for {@linkcode Gate}. */
export interface GateOptions {
  /** Most connections at once, admitted or being admitted; one more is refused as full. */
  maxClients: number;
  /**
   * Most connections at once from one address (IPv4-mapped IPv6 addresses
   * count as their IPv4 address); 0 for no limit. Unix sockets have no
   * address and are not counted.
   * @default {0}
   */
  maxPerAddress?: number;
  /** Which addresses may connect. @default everyone */
  access?: AccessList;
  /**
   * Whether a ban keeps `hostname` out (the server's ban list, which changes
   * while it runs). @default nobody is banned
   */
  banned?: (hostname: string) => BanRefusal | null;
}

/** What counts connections and decides who may come in, for every listener of a server. */
export class Gate {
  /** Most connections at once; one more is refused as full. */
  readonly maxClients: number;
  /** Most connections at once from one address; 0: no limit. */
  readonly maxPerAddress: number;
  /** Which addresses may connect; undefined: everyone. */
  readonly access: AccessList | undefined;
  readonly #banned: ((hostname: string) => BanRefusal | null) | undefined;
  /** Connections open now, admitted or being admitted (in a TLS handshake, say). */
  #active = 0;
  /** Connections being told why they were refused. */
  #refusing = 0;
  /** Connections counted in `#active`, by address; only kept with a per-address limit. */
  readonly #byAddress = new Map<string, number>();
  /** Woken when nothing is open any more. */
  #idle: PromiseWithResolvers<void> | null = null;

  /** A gate; see {@linkcode GateOptions}. */
  constructor(options: GateOptions) {
    this.maxClients = options.maxClients;
    this.maxPerAddress = options.maxPerAddress ?? 0;
    this.access = options.access;
    this.#banned = options.banned;
  }

  /** Connections open now, admitted or being admitted. */
  get active(): number {
    return this.#active;
  }

  /** Connections being refused now. */
  get refusing(): number {
    return this.#refusing;
  }

  /**
   * Counts a new connection, from `hostname` when it has one; returns the
   * function that uncounts it (call it once).
   */
  enter(hostname?: string): () => void {
    this.#active++;
    const key = this.maxPerAddress > 0 && hostname !== undefined ? addressKey(hostname) : null;
    if (key !== null) this.#byAddress.set(key, (this.#byAddress.get(key) ?? 0) + 1);
    let left = false;
    return () => {
      if (left) return;
      left = true;
      this.#active--;
      if (key !== null) {
        const count = this.#byAddress.get(key)! - 1;
        if (count === 0) this.#byAddress.delete(key);
        else this.#byAddress.set(key, count);
      }
      this.#checkIdle();
    };
  }

  /**
   * Moves a counted connection to the refused: it no longer counts against
   * either limit. Returns the function to call once it is closed, or null
   * when too many are being refused already (close it at once, unannounced).
   */
  refuse(release: () => void): (() => void) | null {
    release();
    if (this.#refusing >= MAX_REFUSING) return null;
    this.#refusing++;
    let left = false;
    return () => {
      if (left) return;
      left = true;
      this.#refusing--;
      this.#checkIdle();
    };
  }

  /** Whether one more connection than the limit is open. */
  get full(): boolean {
    return this.#active > this.maxClients;
  }

  /** Whether `hostname` has more connections open than the per-address limit. */
  crowded(hostname: string): boolean {
    return this.maxPerAddress > 0 &&
      (this.#byAddress.get(addressKey(hostname)) ?? 0) > this.maxPerAddress;
  }

  /** The access rule that refuses `hostname`, or null when it may connect. */
  refuses(hostname: string): string | null {
    if (this.access === undefined || this.access.empty) return null;
    const decision = this.access.check(hostname);
    return decision.allowed ? null : `denied by ${decision.rule}`;
  }

  /** The ban that keeps `hostname` out, or null. */
  banned(hostname: string): BanRefusal | null {
    return this.#banned?.(hostname) ?? null;
  }

  /** Settles when no connection is open. */
  idle(): Promise<void> {
    if (this.#active === 0 && this.#refusing === 0) return Promise.resolve();
    this.#idle ??= Promise.withResolvers();
    return this.#idle.promise;
  }

  #checkIdle(): void {
    if (this.#active === 0 && this.#refusing === 0) this.#idle?.resolve();
  }
}

/** One key per machine: `::ffff:192.0.2.1` is `192.0.2.1`, and IPv6 is compared in lower case. */
function addressKey(hostname: string): string {
  const lower = hostname.toLowerCase();
  return lower.startsWith("::ffff:") && lower.includes(".") ? lower.slice(7) : lower;
}

/** What a transport does with the connections an {@linkcode Acceptor} admits. */
export interface ConnectionHandler {
  /** What is spoken: `line`, `irc`; for the console. */
  readonly transport: string;
  /** Takes an admitted connection; `release` must be called once it is closed. */
  accept(conn: Deno.Conn, release: () => void): void;
  /**
   * Tells a refused connection why, in the transport's words (`text`, when
   * given, is the sentence to use: a ban's reason and end, the per-address
   * limit), and ends it within `timeoutMs`; the acceptor closes it.
   */
  refuse(conn: Deno.Conn, why: Refusal, text?: string, timeoutMs?: number): Promise<void>;
  /**
   * The listener stopped accepting (the server shuts down): end the
   * connections that are not attached to the core yet (IRC clients that have
   * not registered), which the core's shutdown does not know of.
   */
  close?(reason: string): void;
}

/** Options for {@linkcode Acceptor}. */
export interface AcceptorOptions {
  /** The gate shared by every listener of the server. */
  gate: Gate;
  /** Where refusals and accept errors are reported. */
  log: ServerLog;
  /**
   * Milliseconds a TLS client has to complete its handshake.
   * @default {10000}
   */
  handshakeTimeout?: number;
}

/**
 * Accepts on one listener until closed and hands each admitted connection to
 * its transport.
 */
export class Acceptor {
  /** The address the listener is bound to. */
  readonly addr: Deno.Addr;
  /** Settles when the accept loop has ended. */
  readonly finished: Promise<void>;
  readonly #listener: Deno.Listener;
  readonly #handler: ConnectionHandler;
  readonly #gate: Gate;
  readonly #log: ServerLog;
  readonly #handshakeTimeout: number;
  /** Connections in their TLS handshake: closing the acceptor closes them. */
  readonly #admitting = new Set<Deno.Conn>();
  #closed = false;

  /** Starts accepting at once. */
  constructor(listener: Deno.Listener, handler: ConnectionHandler, options: AcceptorOptions) {
    this.#listener = listener;
    this.addr = listener.addr;
    this.#handler = handler;
    this.#gate = options.gate;
    this.#log = options.log;
    this.#handshakeTimeout = options.handshakeTimeout ?? 10_000;
    if (listener instanceof NodeTlsListener) {
      // node:net accepts every connection as it comes (Deno.listen leaves them
      // in the kernel's queue until asked): bound it by what the gate admits.
      listener.maxConnections = this.#gate.maxClients + MAX_REFUSING + 1;
    }
    this.finished = this.#loop();
  }

  /** Stops accepting; connections still being admitted are closed. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#listener.close();
    } catch {
      // Already closed.
    }
    for (const conn of this.#admitting) closeQuietly(conn);
    this.#admitting.clear();
    this.#handler.close?.("server shutting down");
  }

  /**
   * Accepts until the listener closes. Errors of one connection (a client that
   * reset before the accept completed: NotConnected, ConnectionAborted) must
   * not end the loop; `for await (… of listener)` would rethrow them.
   */
  async #loop(): Promise<void> {
    while (!this.#closed) {
      let conn: Deno.Conn;
      try {
        conn = await this.#listener.accept();
      } catch (error) {
        if (this.#closed || error instanceof Deno.errors.BadResource) return;
        this.#log.event({ event: "error", peer: null, message: `accept: ${message(error)}` });
        if (!isConnectionError(error)) {
          // Out of descriptors, say: retrying at once would spin.
          await new Promise((resolve) => setTimeout(resolve, ACCEPT_BACKOFF_MS));
        }
        continue;
      }
      void this.#admit(conn);
    }
  }

  /**
   * Admits one connection or turns it away. Never rejects. Every limit is
   * checked before a TLS handshake, so a flood of handshakes that never finish
   * holds at most the client limit, each for the handshake timeout at most.
   */
  async #admit(conn: Deno.Conn): Promise<void> {
    const tcp = conn.remoteAddr.transport === "tcp";
    const hostname = tcp ? (conn.remoteAddr as Deno.NetAddr).hostname : undefined;
    const release = this.#gate.enter(hostname);
    const address = formatAddress(conn.remoteAddr);
    try {
      if (hostname !== undefined) {
        const rule = this.#gate.refuses(hostname);
        if (rule !== null) return await this.#refuse(conn, "denied", address, rule, release);
        const ban = this.#gate.banned(hostname);
        if (ban !== null) {
          return await this.#refuse(conn, "banned", address, ban.reason, release, ban.text);
        }
      }
      if (this.#gate.full) {
        return await this.#refuse(conn, "full", address, "server full", release);
      }
      if (hostname !== undefined && this.#gate.crowded(hostname)) {
        const limit = this.#gate.maxPerAddress;
        return await this.#refuse(
          conn,
          "crowded",
          address,
          `more than ${limit} connections from ${hostname}`,
          release,
          `too many connections from your address (at most ${limit})`,
        );
      }
      // The transports coalesce their own writes; Nagle would only add delay.
      if (tcp) (conn as Deno.TcpConn).setNoDelay?.(true);
      if ("handshake" in conn && !await this.#handshake(conn as Deno.TlsConn, address)) {
        closeQuietly(conn);
        return release();
      }
      if (this.#closed) {
        closeQuietly(conn);
        return release();
      }
      this.#handler.accept(conn, release);
    } catch (error) {
      // Nothing above should throw; if it does, it ends this connection only.
      this.#log.event({ event: "error", peer: null, message: `${address}: ${message(error)}` });
      closeQuietly(conn);
      release();
    }
  }

  async #refuse(
    conn: Deno.Conn,
    why: Refusal,
    address: string,
    reason: string,
    release: () => void,
    text?: string,
  ): Promise<void> {
    this.#log.event({ event: "refused", address, reason });
    const done = this.#gate.refuse(release);
    if (done === null) return closeQuietly(conn); // too many at once: no word
    try {
      await this.#handler.refuse(conn, why, text, REFUSAL_MS);
    } finally {
      closeQuietly(conn);
      done();
    }
  }

  /** Completes a TLS handshake within the timeout; false (and logged) when it fails. */
  async #handshake(conn: Deno.TlsConn, address: string): Promise<boolean> {
    this.#admitting.add(conn);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      closeQuietly(conn);
    }, this.#handshakeTimeout);
    try {
      await conn.handshake();
      return true;
    } catch (error) {
      const reason = timedOut
        ? "handshake timed out"
        : this.#closed
        ? "server shutting down"
        : `TLS handshake failed: ${message(error)}`;
      this.#log.event({ event: "refused", address, reason });
      return false;
    } finally {
      clearTimeout(timer);
      this.#admitting.delete(conn);
    }
  }
}

/** Closes a connection that may be closed already. */
export function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // Already closed (BadResource): nothing to do.
  }
}
