/**
 * The client side: connecting (TCP, TLS or a Unix socket, with a timeout and a
 * clear error), and a {@linkcode ChatClient} that carries typed lines to the
 * server and the server's lines back, reconnecting if asked to. No console here.
 *
 * @module
 */

import { connectPinned, PinError } from "../net/tls_pin.ts";
import type { Farewell } from "./server_reader.ts";
import {
  Connection,
  formatAddress,
  isConnectionError,
  message,
  type ReadSink,
} from "../net/connection.ts";

/** Where to connect. */
export interface ConnectTarget {
  /** Host name or address. @default {"127.0.0.1"} */
  hostname?: string;
  /** TCP port. @default {5000} */
  port?: number;
  /** A Unix socket path; when set, `hostname` and `port` are ignored. */
  path?: string;
  /** Speak TLS, verifying the server's certificate and name. @default {false} */
  tls?: boolean;
  /** PEM certificates of the authorities to trust, instead of the system's. */
  caCerts?: string[];
  /**
   * Speak TLS with a server whose certificate has this SHA-256 fingerprint
   * (a server started with `--tls-self-signed` prints it), whatever signed
   * it and whatever names it has: see tls_pin.ts.
   */
  fingerprint?: string;
}

/** Options for {@linkcode connect}. */
export interface ConnectOptions {
  /**
   * Milliseconds to wait for the connection (and the TLS handshake).
   * @default {10000}
   */
  timeout?: number;
  /** Cancels the attempt. */
  signal?: AbortSignal;
}

/** Thrown when a connection cannot be made; the message says where and why. */
export class ConnectError extends Error {
  /** Where the connection was going: `127.0.0.1:5000`, `unix:/tmp/chat.sock`. */
  readonly target: string;
  /** `cannot connect to <target>: <reason>`. */
  constructor(target: string, reason: string, options?: ErrorOptions) {
    super(`cannot connect to ${target}: ${reason}`, options);
    this.name = "ConnectError";
    this.target = target;
  }
}

/** `127.0.0.1:5000`, `[::1]:5000` or `unix:/path`, for messages. */
export function describeTarget(target: ConnectTarget): string {
  if (target.path !== undefined) return `unix:${target.path}`;
  return formatAddress({
    transport: "tcp",
    hostname: target.hostname ?? "127.0.0.1",
    port: target.port ?? 5000,
  });
}

/**
 * Connects to a chat server. TLS connections have completed their handshake, so
 * a certificate problem is reported here and not on the first read.
 *
 * @example
 * ```ts
 * import { connect, ConnectError } from "./chat_client.ts";
 * import assert from "node:assert/strict";
 *
 * // Find a port nobody listens on: bind one, then free it.
 * const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const port = listener.addr.port;
 * listener.close();
 * await assert.rejects(connect({ port }), (e: Error) =>
 *   e instanceof ConnectError &&
 *   e.message === `cannot connect to 127.0.0.1:${port}: connection refused`);
 * ```
 */
export async function connect(
  target: ConnectTarget,
  options: ConnectOptions = {},
): Promise<Connection> {
  const where = describeTarget(target);
  const timeout = options.timeout ?? 10_000;
  const abort = new AbortController();
  const onAbort = () => abort.abort();
  options.signal?.addEventListener("abort", onAbort, { once: true });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    abort.abort();
  }, timeout);
  let conn: Deno.Conn | null = null;
  try {
    if (target.path !== undefined) {
      conn = await Deno.connect({ transport: "unix", path: target.path });
    } else if (target.fingerprint !== undefined) {
      const hostname = target.hostname ?? "127.0.0.1";
      conn = await connectPinned(
        { hostname, port: target.port ?? 5000, timeout },
        target.fingerprint,
      );
    } else {
      const hostname = target.hostname ?? "127.0.0.1";
      const tcp = await Deno.connect({ hostname, port: target.port ?? 5000, signal: abort.signal });
      // Lines are written as soon as they are typed: Nagle would hold them back.
      tcp.setNoDelay(true);
      conn = tcp;
      if (target.tls) {
        // Starting TLS over our own TCP connection, rather than Deno.connectTls,
        // is what lets Nagle be turned off for the handshake too.
        const tls = await Deno.startTls(tcp, { hostname, caCerts: target.caCerts });
        conn = tls;
        const closeOnAbort = () => tls.close();
        abort.signal.addEventListener("abort", closeOnAbort, { once: true });
        try {
          await tls.handshake();
        } finally {
          abort.signal.removeEventListener("abort", closeOnAbort);
        }
      }
    }
    // Generous limits: a server's line may be its own limit plus a name, and
    // sanitizing can triple it; typed lines wait for ready() rather than fail.
    return new Connection(conn, { maxLine: 1024 * 1024, sendQueue: 64 * 1024 * 1024 });
  } catch (error) {
    try {
      conn?.close();
    } catch {
      // Closed by the abort already.
    }
    if (timedOut) throw new ConnectError(where, `timed out after ${timeout / 1000} s`);
    if (options.signal?.aborted) throw new ConnectError(where, "cancelled", { cause: error });
    throw new ConnectError(where, explain(error, target), { cause: error });
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener("abort", onAbort);
  }
}

/** Says why a connection failed, in words a user can act on. */
function explain(error: unknown, target: ConnectTarget): string {
  if (error instanceof Deno.errors.ConnectionRefused) return "connection refused";
  if (error instanceof Deno.errors.NotCapable) {
    return target.path === undefined
      ? "network access not allowed (run with --allow-net)"
      : "socket access not allowed (run with --allow-read --allow-write)";
  }
  if (error instanceof Deno.errors.NotFound) {
    return target.path === undefined ? "host not found" : "no such socket file";
  }
  if (error instanceof Deno.errors.PermissionDenied) return "permission denied";
  if (error instanceof PinError) return error.message;
  const text = message(error);
  if (target.tls && (error instanceof Deno.errors.InvalidData || isConnectionError(error))) {
    if (text.includes("certificate")) {
      return `TLS certificate not accepted (${text}); is --ca the authority that signed it?`;
    }
    return `TLS handshake failed (${text}); is the server using TLS?`;
  }
  return text;
}

/** What reads a connection for a {@linkcode ChatClient}. */
export interface ClientReader extends ReadSink {
  /** Settles when typed lines may be sent; absent: at once. */
  readonly ready?: Promise<void>;
  /** A line was typed while `ready` had not settled. */
  hurry?(): void;
  /** After the connection ended: how the server let us go, if it said (see server_reader.ts). */
  readonly farewell?: Farewell | null;
}

/** Options for {@linkcode ChatClient}. */
export interface ChatClientOptions extends ConnectOptions {
  /**
   * Makes the reader of each new connection: where the server's lines go, line
   * by line with a flush after each read. `send` writes to that connection.
   * Typed lines (and the greeting) wait until the reader's `ready` settles: a
   * reader that first agrees on a format with the server (see server_reader.ts)
   * holds them until then. `close` ends that connection (a reader that finds
   * it cannot go on: a server asking for a password there is none of).
   */
  open: (send: (bytes: Uint8Array) => void, close: () => void) => ClientReader;
  /** Told how many lines typed while disconnected went out on a new connection. */
  onResent?: (count: number) => void;
  /** Status messages for the user: connected, closed, reconnecting. */
  onStatus?: (text: string) => void;
  /**
   * When the connection drops, connect again with exponential backoff (0.5 s
   * doubling to 30 s, with jitter), resending lines typed meanwhile.
   * @default {false}
   */
  reconnect?: boolean;
  /**
   * Most typed lines kept while not connected; more are refused.
   * @default {1000}
   */
  outbox?: number;
  /** Sent first on every connection: a `/nick` line, say. */
  greeting?: Uint8Array;
}

/** How a {@linkcode ChatClient} run ended. */
export interface ClientResult {
  /** What the server said as it let us go (kicked, banned, refused…), if it said. */
  readonly farewell?: Farewell;
  /** `"closed"` by the server in order, `"lost"` by an error, or `"stopped"` by the signal. */
  readonly end: "closed" | "lost" | "stopped";
  /** Typed lines that were never handed to the network. */
  readonly unsent: number;
}

/** The close reason of a connection its reader gave up on. */
const GAVE_UP = "given up by the client";
const FIRST_DELAY_MS = 500;
/** A connection that lasted this long resets the reconnect delays. */
const LASTING_MS = 10_000;
const MAX_DELAY_MS = 30_000;
/** Above this many queued bytes, `ready()` asks the typist (or a pipe) to wait. */
const HIGH_WATER = 256 * 1024;

/**
 * A chat client: lines typed go to the server as they come, lines from the
 * server go to the sink as they come; neither waits for the other.
 *
 * Lines typed while there is no connection wait in a bounded outbox. A line
 * handed to the network counts as sent; TCP cannot say whether a server that
 * died had read it, so it is not sent again (no duplicates).
 */
export class ChatClient {
  readonly #target: ConnectTarget;
  readonly #options: ChatClientOptions;
  /** The live connection, or null between connections. */
  #connection: Connection | null = null;
  /** The reader of the connection being set up, until typed lines may go. */
  #reader: ClientReader | null = null;
  /** How many lines in the outbox were typed with no connection at all. */
  #typedOffline = 0;
  /** Lines waiting for a connection. */
  #outbox: Uint8Array[] = [];
  /** Set once input has ended: half-close after sending what is left. */
  #inputEnded = false;
  /** Set when the user sent /quit: the server closing then is no reason to reconnect. */
  #quitting = false;

  /** A client for `target`; nothing happens until {@linkcode run}. */
  constructor(target: ConnectTarget, options: ChatClientOptions) {
    this.#target = target;
    this.#options = options;
  }

  /** Whether a connection is up. */
  get connected(): boolean {
    return this.#connection !== null;
  }

  /**
   * Sends one line (its bytes, ending in `\n`). Returns false when it could not
   * even be queued: not connected and the outbox is full.
   */
  send(line: Uint8Array): boolean {
    if (line[0] === 0x2f && /^\/quit\b/i.test(new TextDecoder().decode(line.subarray(0, 6)))) {
      this.#quitting = true;
    }
    if (this.#connection !== null && this.#connection.send(line)) return true;
    if (this.#reader !== null) this.#reader.hurry?.();
    else this.#typedOffline++;
    if (this.#outbox.length >= (this.#options.outbox ?? 1000)) return false;
    this.#outbox.push(line);
    return true;
  }

  /** Undefined while sending keeps up; otherwise settles when the backlog is written. */
  ready(): Promise<void> | undefined {
    const connection = this.#connection;
    return connection !== null && connection.queuedBytes > HIGH_WATER
      ? connection.drained()
      : undefined;
  }

  /** Input has ended: once everything is sent, half-close (like `nc -N`). */
  async endInput(): Promise<void> {
    this.#inputEnded = true;
    await this.#connection?.closeWrite();
  }

  /**
   * Connects and runs until the server closes, the connection is lost (without
   * `reconnect`), or the signal aborts. The first connection failure throws a
   * {@linkcode ConnectError} unless `reconnect` is set.
   */
  async run(): Promise<ClientResult> {
    const options = this.#options;
    const status = options.onStatus ?? (() => {});
    const where = describeTarget(this.#target);
    let failures = 0;
    while (!options.signal?.aborted) {
      let connection: Connection;
      try {
        connection = await connect(this.#target, options);
      } catch (error) {
        if (!options.reconnect || options.signal?.aborted) throw error;
        const delay = backoff(failures++);
        status(`${message(error)}; trying again in ${(delay / 1000).toFixed(1)} s`);
        if (!await this.#wait(delay)) break;
        continue;
      }
      const connectedAt = Date.now();
      status(`connected to ${where}`);
      const stop = () => connection.close("stopped");
      options.signal?.addEventListener("abort", stop, { once: true });
      const reader = options.open(
        (bytes) => connection.send(bytes),
        () => connection.close(GAVE_UP),
      );
      this.#reader = reader;
      const reading = connection.readLines(reader).then(
        (reason) => reason,
        (error) => message(error),
      );
      let reason: string;
      try {
        // Typed lines wait for the reader (if it agrees on a format first), or
        // for the end of a connection that never got that far.
        const ready = await Promise.race([
          (reader.ready ?? Promise.resolve()).then(() => true),
          reading.then(() => false),
        ]);
        this.#reader = null;
        if (ready) {
          this.#connection = connection;
          if (options.greeting !== undefined) connection.send(options.greeting);
          const waiting = this.#outbox;
          this.#outbox = [];
          for (const line of waiting) connection.send(line);
          const offline = Math.min(this.#typedOffline, waiting.length);
          this.#typedOffline = 0;
          if (offline > 0) options.onResent?.(offline);
          if (this.#inputEnded) void connection.closeWrite();
        }
        reason = await reading;
      } finally {
        options.signal?.removeEventListener("abort", stop);
        this.#connection = null;
        // close() first: it is what sets aside the lines still queued.
        connection.close();
        this.#outbox.unshift(...connection.takeUnsent());
      }
      if (options.signal?.aborted) break;
      const closed = reason === "eof" || reason === GAVE_UP;
      status(
        reason === GAVE_UP
          ? "connection closed"
          : closed
          ? "connection closed by server"
          : reason === "connection lost"
          ? "connection lost"
          : `connection lost: ${reason}`,
      );
      const farewell = reader.farewell ?? undefined;
      // Kicked, banned or refused: the server meant it; coming back by ourselves would not.
      const sent = farewell !== undefined && farewell.reason !== "shutdown" &&
        farewell.reason !== "timeout" && farewell.reason !== "full";
      const finished = sent || this.#quitting ||
        (this.#inputEnded && this.#outbox.length === 0);
      if (!options.reconnect || finished) {
        return {
          end: closed ? "closed" : "lost",
          unsent: this.#outbox.length,
          ...(farewell === undefined ? {} : { farewell }),
        };
      }
      if (farewell?.reason === "full") status(`the server is full`);
      // Only a connection that lasted starts the delays over: a server that
      // accepts and closes at once (a full one) is not hammered every 0.5 s.
      if (farewell?.reason !== "full" && Date.now() - connectedAt >= LASTING_MS) failures = 0;
      const delay = backoff(failures++);
      status(`reconnecting in ${(delay / 1000).toFixed(1)} s`);
      if (!await this.#wait(delay)) break;
    }
    return { end: "stopped", unsent: this.#outbox.length };
  }

  /** Waits `ms`, or less if the signal aborts; false if it did. */
  #wait(ms: number): Promise<boolean> {
    const signal = this.#options.signal;
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", done);
        resolve(!signal?.aborted);
      };
      const timer = setTimeout(done, ms);
      signal?.addEventListener("abort", done, { once: true });
    });
  }
}

/** Delay before attempt `n` (from 0): 0.5 s doubling to 30 s, each within ±20%. */
export function backoff(n: number): number {
  const base = Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** n);
  return Math.round(base * (0.8 + 0.4 * Math.random()));
}
