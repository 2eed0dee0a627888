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

/** After an accept error that is not one connection's (out of descriptors, say): wait this long. */
const ACCEPT_BACKOFF_MS = 100;

/** Why a connection is turned away, for the transport to say in its own words. */
export type Refusal = "denied" | "full";

/** What counts connections and decides who may come in, for every listener of a server. */
export class Gate {
  /** Most connections at once; one more is refused as full. */
  readonly maxClients: number;
  /** Which addresses may connect; undefined: everyone. */
  readonly access: AccessList | undefined;
  /** Connections open now, admitted or being admitted. */
  #active = 0;
  /** Woken when `#active` drops to 0. */
  #idle: PromiseWithResolvers<void> | null = null;

  /** A gate for `maxClients` connections, checked against `access`. */
  constructor(options: { maxClients: number; access?: AccessList }) {
    this.maxClients = options.maxClients;
    this.access = options.access;
  }

  /** Connections open now. */
  get active(): number {
    return this.#active;
  }

  /** Counts a new connection; returns the function that uncounts it (call it once). */
  enter(): () => void {
    this.#active++;
    let left = false;
    return () => {
      if (left) return;
      left = true;
      if (--this.#active === 0) this.#idle?.resolve();
    };
  }

  /** Whether one more connection than the limit is open. */
  get full(): boolean {
    return this.#active > this.maxClients;
  }

  /** The access rule that refuses `hostname`, or null when it may connect. */
  refuses(hostname: string): string | null {
    if (this.access === undefined || this.access.empty) return null;
    const decision = this.access.check(hostname);
    return decision.allowed ? null : `denied by ${decision.rule}`;
  }

  /** Settles when no connection is open. */
  idle(): Promise<void> {
    if (this.#active === 0) return Promise.resolve();
    this.#idle ??= Promise.withResolvers();
    return this.#idle.promise;
  }
}

/** What a transport does with the connections an {@linkcode Acceptor} admits. */
export interface ConnectionHandler {
  /** What is spoken: `line`, `irc`; for the console. */
  readonly transport: string;
  /** Takes an admitted connection; `release` must be called once it is closed. */
  accept(conn: Deno.Conn, release: () => void): void;
  /** Tells a refused connection why, in the transport's words, and closes it. */
  refuse(conn: Deno.Conn, why: Refusal): Promise<void>;
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

  /** Admits one connection or turns it away. Never rejects. */
  async #admit(conn: Deno.Conn): Promise<void> {
    const release = this.#gate.enter();
    const address = formatAddress(conn.remoteAddr);
    try {
      if (conn.remoteAddr.transport === "tcp") {
        const rule = this.#gate.refuses(conn.remoteAddr.hostname);
        if (rule !== null) return await this.#refuse(conn, "denied", address, rule, release);
        // The transports coalesce their own writes; Nagle would only add delay.
        (conn as Deno.TcpConn).setNoDelay?.(true);
      }
      if ("handshake" in conn && !await this.#handshake(conn as Deno.TlsConn, address)) {
        closeQuietly(conn);
        return release();
      }
      if (this.#closed) {
        closeQuietly(conn);
        return release();
      }
      if (this.#gate.full) {
        return await this.#refuse(conn, "full", address, "server full", release);
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
  ): Promise<void> {
    this.#log.event({ event: "refused", address, reason });
    try {
      await this.#handler.refuse(conn, why);
    } finally {
      closeQuietly(conn);
      release();
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
