/**
 * A Redis client over `Deno.connect`, for charla's cluster: {@linkcode RedisClient}
 * for commands, pipelined, and {@linkcode RedisSubscriber} for pub/sub on a
 * connection of its own. Both reconnect by themselves and say so.
 *
 * The shape is the one mini-redis and the official clients share: one socket
 * per client; commands are encoded into one buffer and written together once
 * per tick, however many were issued; replies come back in the order the
 * commands went out, so each answers the oldest command still waiting.
 *
 * What a lost connection means, and why: a command that was written may or may
 * not have run, and TCP cannot tell which, so it rejects with a
 * {@linkcode RedisConnectionError} and is never sent again behind the caller's
 * back (INCR twice is a bug; XADD twice a duplicate message). Commands issued
 * while reconnecting reject at once rather than pile up. The subscriber keeps
 * the set of channels and patterns it was asked for and subscribes to all of
 * them on every new connection; messages published while it was away are lost,
 * which is why it reports `disconnected` and `reconnected`: the caller fills the
 * gap from somewhere that keeps history (a stream).
 *
 * @module
 */

import { formatAddress, isConnectionError, message } from "../net/connection.ts";
import {
  type Arg,
  CommandEncoder,
  decodeReply,
  PushReply,
  RedisError,
  RedisProtocolError,
  type Reply,
  ReplyParser,
  type TextReply,
} from "./resp.ts";

/** Where to connect, as {@linkcode parseRedisUrl} reads a URL. */
export interface RedisTarget {
  /** Host name or address (an IPv6 address without brackets). */
  hostname: string;
  /** TCP port. */
  port: number;
  /** True for `rediss://`: TLS, with the server's certificate checked. */
  tls: boolean;
  /** The ACL user, when the URL names one. */
  username?: string;
  /** The password, when the URL has one. */
  password?: string;
  /** The database number, from the URL's path. */
  db?: number;
}

/**
 * Reads `redis://[user:password@]host[:port][/db]` or `rediss://…` (TLS). The
 * port defaults to 6379; user and password are percent-decoded. Throws a
 * `TypeError` that never repeats the password.
 *
 * @example
 * ```ts
 * import { parseRedisUrl } from "./redis.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(parseRedisUrl("redis://:s%40cret@[::1]:6380/2"), {
 *   hostname: "::1",
 *   port: 6380,
 *   tls: false,
 *   password: "s@cret",
 *   db: 2,
 * });
 * assert.throws(() => parseRedisUrl("http://127.0.0.1"), /must start with redis:\/\//);
 * ```
 */
export function parseRedisUrl(url: string): RedisTarget {
  const fail = (why: string) => new TypeError(`Invalid redis URL "${redactUrl(url)}": ${why}`);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw fail("expected redis://host:port");
  }
  if (parsed.protocol !== "redis:" && parsed.protocol !== "rediss:") {
    throw fail("must start with redis:// or rediss://");
  }
  const hostname = parsed.hostname.replace(/^\[(.*)\]$/, "$1");
  if (hostname === "") throw fail("no host");
  if (parsed.search !== "" || parsed.hash !== "") throw fail("no query or fragment is understood");
  const target: RedisTarget = {
    hostname,
    port: parsed.port === "" ? 6379 : Number(parsed.port),
    tls: parsed.protocol === "rediss:",
  };
  if (parsed.username !== "") target.username = decodeURIComponent(parsed.username);
  if (parsed.password !== "") target.password = decodeURIComponent(parsed.password);
  const path = parsed.pathname;
  if (path !== "" && path !== "/") {
    if (!/^\/\d{1,5}$/.test(path)) throw fail(`the path must be a database number, not "${path}"`);
    target.db = Number(path.slice(1));
  }
  return target;
}

/** `url` with its password replaced by `***`, for messages and logs. */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z]+:\/\/[^:@/]*:)[^@/]*@/i, "$1***@");
}

/** Told when the connection drops, while reconnecting, and when it is back. */
export type RedisEvent =
  | {
    /** The connection dropped; commands in flight were rejected with `error`. */
    readonly type: "disconnected";
    readonly error: RedisConnectionError;
  }
  | {
    /** Attempt number `attempt` (from 1) starts after `delay` ms; `error` says why the last failed. */
    readonly type: "reconnecting";
    readonly attempt: number;
    readonly delay: number;
    readonly error: Error;
  }
  | {
    /**
     * Connected again (after AUTH, SELECT and, for a subscriber, every
     * SUBSCRIBE): what was published meanwhile was lost, so resync now.
     */
    readonly type: "reconnected";
    readonly attempts: number;
  };

/** Options for both {@linkcode RedisClient.connect} and {@linkcode RedisSubscriber.connect}. */
export interface RedisOptions {
  /** The ACL user; overrides the URL's. */
  username?: string;
  /** The password (say, read from a file); overrides the URL's. */
  password?: string;
  /** The database to SELECT; overrides the URL's. (Pub/sub ignores databases.) */
  db?: number;
  /** Sent as CLIENT SETNAME on every connection, so CLIENT LIST shows who is who. */
  name?: string;
  /** PEM certificates of the authorities to trust for `rediss://`, instead of the system's. */
  caCerts?: string[];
  /**
   * Milliseconds a connection attempt may take, AUTH and SELECT included.
   * @default {10000}
   */
  connectTimeout?: number;
  /**
   * Connect again when the connection drops. The first connection is not
   * retried: `connect()` rejects, so a wrong address shows at once.
   * @default {true}
   */
  reconnect?: boolean;
  /**
   * Milliseconds before the first reconnection attempt; each next one waits
   * twice as long, up to `maxReconnectDelay`, each drawn between half and all of
   * that, so that many processes that lost the same server do not return at once.
   * @default {50}
   */
  reconnectDelay?: number;
  /** Longest wait between reconnection attempts, in milliseconds. @default {5000} */
  maxReconnectDelay?: number;
  /**
   * Most bytes one reply may take. A longer one is a protocol error: the
   * connection closes (and reconnects) rather than let a server grow our memory.
   * @default {536870912}
   */
  maxReply?: number;
  /** Told of disconnections and reconnections; see {@linkcode RedisEvent}. */
  onEvent?: (event: RedisEvent) => void;
}

/** Options for {@linkcode RedisClient.connect}. */
export interface RedisClientOptions extends RedisOptions {
  /**
   * RESP version: 3 sends HELLO 3 on every connection, and replies may then be
   * maps, sets, doubles and booleans (see {@linkcode Reply}).
   * @default {2}
   */
  protocol?: 2 | 3;
  /**
   * Most commands waiting for a reply; past it `command()` rejects: a server
   * this far behind is not coming back soon, and waiting would only hold memory.
   * @default {100000}
   */
  maxPending?: number;
  /** RESP3 pushes (client-side caching invalidations), which answer no command. */
  onPush?: (push: PushReply) => void;
}

/** Options for {@linkcode RedisSubscriber.connect}. */
export interface RedisSubscriberOptions extends RedisOptions {
  /**
   * Every message, in the order Redis sent them. Called synchronously from the
   * read loop: a slow callback slows reading, and Redis cuts a subscriber that
   * falls too far behind (`client-output-buffer-limit pubsub`).
   */
  onMessage: (message: RedisMessage) => void;
}

/**
 * The connection to Redis failed, dropped, or is not up; or the client was
 * closed. A command rejected with it may or may not have run.
 */
export class RedisConnectionError extends Error {
  /** The server's address: `127.0.0.1:6379`. */
  readonly address: string;
  /** `message` says what happened and what to do about it. */
  constructor(message: string, address: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "RedisConnectionError";
    this.address = address;
  }
}

/** One pub/sub message: channel, payload and matching pattern, as bytes. */
export class RedisMessage {
  /** The channel it was published to. */
  readonly channel: Uint8Array;
  /** What was published, byte for byte. */
  readonly payload: Uint8Array;
  /** The pattern that matched, for a PSUBSCRIBE; null for a SUBSCRIBE. */
  readonly pattern: Uint8Array | null;

  /** A message as received. */
  constructor(channel: Uint8Array, payload: Uint8Array, pattern: Uint8Array | null = null) {
    this.channel = channel;
    this.payload = payload;
    this.pattern = pattern;
  }

  /** The channel as UTF-8 text. */
  get channelText(): string {
    return decoder.decode(this.channel);
  }

  /** The payload as UTF-8 text (invalid bytes become U+FFFD). */
  get text(): string {
    return decoder.decode(this.payload);
  }
}

const decoder = new TextDecoder();
const encoder = new TextEncoder();
/** Bytes asked of each socket read: a few per process, so generous. */
const READ_SIZE = 64 * 1024;

/** A command waiting for its reply (or, for SUBSCRIBE, its `expect` replies). */
interface Waiter {
  expect: number;
  resolve(reply: Reply): void;
  reject(error: Error): void;
}

/**
 * One socket at the level of commands: pipelining with one write per tick,
 * replies matched to commands in order. It never reconnects: when the socket
 * fails, every waiting command rejects and `onLost` is told; its owner decides.
 */
class Link {
  /** The socket; owned from construction on. */
  readonly conn: Deno.Conn;
  readonly #address: string;
  readonly #parser: ReplyParser;
  /** Commands encoded since the last write: the next write, whole. */
  readonly #commands = new CommandEncoder();
  /** Commands waiting for replies, oldest at `#head`; older slots are emptied. */
  #waiters: (Waiter | undefined)[] = [];
  #head = 0;
  /** True while the write loop runs: commands issued meanwhile join its next write. */
  #writing = false;
  /** Why the link closed; null while open. Later commands reject with it. */
  #error: RedisConnectionError | null = null;
  /** Takes the replies that answer no command (messages, pushes); true when it took one. */
  readonly #unasked: ((link: Link, reply: Reply) => boolean) | null;
  /** Told once, when the socket fails (not when `close()` is called). */
  readonly #onLost: (link: Link, error: RedisConnectionError) => void;
  readonly #reading: Promise<void>;
  #written: Promise<void> = Promise.resolve();

  constructor(
    conn: Deno.Conn,
    address: string,
    maxReply: number | undefined,
    unasked: ((link: Link, reply: Reply) => boolean) | null,
    onLost: (link: Link, error: RedisConnectionError) => void,
  ) {
    this.conn = conn;
    this.#address = address;
    this.#parser = new ReplyParser({ maxReply });
    this.#unasked = unasked;
    this.#onLost = onLost;
    this.#reading = this.#readLoop();
  }

  /** Commands sent or queued that wait for a reply. */
  get pending(): number {
    return this.#waiters.length - this.#head;
  }

  /** Sends a command; resolves with its reply, or the last of `expect` replies. */
  command(args: readonly Arg[], expect = 1): Promise<Reply> {
    if (this.#error !== null) return Promise.reject(this.#error);
    try {
      this.#commands.encode(args);
    } catch (error) {
      return Promise.reject(error);
    }
    const { promise, resolve, reject } = Promise.withResolvers<Reply>();
    this.#waiters.push({ expect, resolve, reject });
    if (!this.#writing) {
      this.#writing = true;
      this.#written = this.#writeLoop();
    }
    return promise;
  }

  /** Closes the socket; waiting commands reject with `error`. `onLost` is not told. */
  close(error: RedisConnectionError): void {
    if (this.#error !== null) return;
    this.#error = error;
    try {
      this.conn.close();
    } catch {
      // Closed under us already (BadResource): nothing left to release.
    }
    const waiters = this.#waiters;
    const head = this.#head;
    this.#waiters = [];
    this.#head = 0;
    for (let i = head; i < waiters.length; i++) waiters[i]!.reject(error);
  }

  /** Settles once the read loop and any write have ended (after `close()`). */
  async finished(): Promise<void> {
    await this.#reading;
    await this.#written;
  }

  async #writeLoop(): Promise<void> {
    try {
      // Let the rest of this tick queue its commands: they all go in one write.
      await null;
      while (this.#error === null && this.#commands.length > 0) {
        const data = this.#commands.take();
        // A write may take part of the buffer (DENO_NOTES): write the rest.
        for (let done = 0; done < data.length;) done += await this.conn.write(data.subarray(done));
      }
    } catch (error) {
      this.#fail(error);
    } finally {
      this.#writing = false;
    }
  }

  async #readLoop(): Promise<void> {
    // Replies never point into this buffer (the parser copies), so one serves every read.
    const buffer = new Uint8Array(READ_SIZE);
    try {
      while (true) {
        const n = await this.conn.read(buffer);
        if (n === null) return this.#fail(null);
        this.#parser.push(buffer.subarray(0, n), this.#onReply);
      }
    } catch (error) {
      this.#fail(error);
    }
  }

  readonly #onReply = (reply: Reply): void => {
    // The rest of a chunk that arrived with a fatal error, or after close().
    if (this.#error !== null) return;
    if (this.#unasked?.(this, reply)) return;
    if (this.#head === this.#waiters.length) {
      throw new RedisProtocolError("A reply arrived that no command asked for");
    }
    const waiter = this.#waiters[this.#head]!;
    if (reply instanceof RedisError) {
      this.#shift();
      waiter.reject(reply);
    } else if (--waiter.expect === 0) {
      this.#shift();
      waiter.resolve(reply);
    }
  };

  #shift(): void {
    this.#waiters[this.#head++] = undefined;
    // Drop the emptied front now and then, not on every reply: shift() is O(n).
    if (this.#head === this.#waiters.length) {
      this.#waiters = [];
      this.#head = 0;
    } else if (this.#head >= 1024 && this.#head * 2 >= this.#waiters.length) {
      this.#waiters = this.#waiters.slice(this.#head);
      this.#head = 0;
    }
  }

  /** The socket failed: close, reject what waits, tell the owner. */
  #fail(cause: unknown): void {
    if (this.#error !== null) return;
    const error = lostError(this.#address, cause);
    this.close(error);
    this.#onLost(this, error);
  }
}

/** The error for commands in flight when a link failed because of `cause` (null: EOF). */
function lostError(address: string, cause: unknown): RedisConnectionError {
  const after = "; commands in flight may or may not have run";
  if (cause === null) {
    return new RedisConnectionError(`Redis at ${address} closed the connection${after}`, address);
  }
  if (cause instanceof RedisProtocolError) {
    return new RedisConnectionError(
      `Redis at ${address} sent a reply that cannot be read (${cause.message}), ` +
        `so the connection was closed${after}`,
      address,
      { cause },
    );
  }
  const what = isConnectionError(cause)
    ? `Lost the connection to redis at ${address}`
    : `The connection to redis at ${address} failed`;
  return new RedisConnectionError(`${what} (${message(cause)})${after}`, address, { cause });
}

/** Opens the socket, TLS handshake included, so certificate errors show here. */
async function dial(
  target: RedisTarget,
  caCerts: string[] | undefined,
  signal: AbortSignal,
): Promise<Deno.Conn> {
  const tcp = await Deno.connect({ hostname: target.hostname, port: target.port, signal });
  // Commands are batched by us already; Nagle would only delay a lone one.
  tcp.setNoDelay(true);
  tcp.setKeepAlive(true);
  if (!target.tls) return tcp;
  let tls: Deno.TlsConn;
  try {
    tls = await Deno.startTls(tcp, { hostname: target.hostname, caCerts });
  } catch (error) {
    tcp.close();
    throw error;
  }
  const closeOnAbort = () => tls.close();
  signal.addEventListener("abort", closeOnAbort, { once: true });
  try {
    await tls.handshake();
    return tls;
  } catch (error) {
    if (!signal.aborted) tls.close();
    throw error;
  } finally {
    signal.removeEventListener("abort", closeOnAbort);
  }
}

/** Why a connection attempt failed, in words a user can act on. */
function explainConnectError(error: unknown, target: RedisTarget): string {
  if (error instanceof Deno.errors.ConnectionRefused) {
    return "connection refused; is redis-server running there?";
  }
  if (error instanceof Deno.errors.NotCapable) {
    return "network access not allowed (run with --allow-net)";
  }
  if (error instanceof Deno.errors.NotFound) return "host not found";
  const text = message(error);
  if (target.tls && (error instanceof Deno.errors.InvalidData || isConnectionError(error))) {
    return text.includes("certificate")
      ? `TLS certificate not accepted (${text}); is caCerts the authority that signed it?`
      : `TLS handshake failed (${text}); does the server speak TLS?`;
  }
  return text;
}

/** Which options a link needs from its owner. */
interface LinkSettings extends RedisOptions {
  protocol?: 2 | 3;
}

/**
 * AUTH, SELECT, CLIENT SETNAME (or HELLO 3 with them), pipelined; a PING when
 * there is nothing to say, so a connection only counts once Redis answered.
 */
async function handshake(
  link: Link,
  target: RedisTarget,
  settings: LinkSettings,
  address: string,
): Promise<void> {
  const username = settings.username ?? target.username;
  const password = settings.password ?? target.password;
  const db = settings.db ?? target.db;
  const steps: [string, Promise<Reply>][] = [];
  const step = (what: string, args: Arg[]) => steps.push([what, link.command(args)]);
  if (settings.protocol === 3) {
    const args: Arg[] = ["HELLO", 3];
    if (password !== undefined) args.push("AUTH", username ?? "default", password);
    if (settings.name !== undefined) args.push("SETNAME", settings.name);
    step("HELLO 3", args);
  } else {
    if (password !== undefined) {
      const args = username === undefined ? [password] : [username, password];
      step("the credentials", ["AUTH", ...args]);
    }
    if (settings.name !== undefined) step("CLIENT SETNAME", ["CLIENT", "SETNAME", settings.name]);
  }
  if (db !== undefined && db !== 0) step(`SELECT ${db}`, ["SELECT", db]);
  if (steps.length === 0) step("PING", ["PING"]);
  // Wait for every step, so no rejection is left unhandled; report the first failure.
  const results = await Promise.allSettled(steps.map(([, reply]) => reply));
  for (let i = 0; i < results.length; i++) {
    const result = results[i];
    if (result.status === "fulfilled") continue;
    const error = result.reason;
    if (!(error instanceof RedisError)) throw error;
    if (error.code === "NOAUTH") {
      throw new RedisError(
        `Redis at ${address} requires a password (${error.message}); ` +
          "give one in the URL or the password option",
        error.code,
        { cause: error },
      );
    }
    const what = steps[i][0];
    const advice = error.code === "WRONGPASS"
      ? "; check the user name and password"
      : what === "HELLO 3" && /unknown command/i.test(error.message)
      ? "; protocol 3 needs Redis 6 or later"
      : "";
    const text = `Redis at ${address} refused ${what}: ${error.message}${advice}`;
    throw new RedisError(text, error.code, { cause: error });
  }
}

/** What a client or subscriber plugs into its {@linkcode Supervisor}. */
interface LinkUser {
  /** Takes replies that answer no command. */
  unasked: ((link: Link, reply: Reply) => boolean) | null;
  /** After the handshake, before the link is adopted (the subscriber resubscribes here). */
  prepare?(link: Link): Promise<unknown>;
  /** The link is in use now: right after `prepare`, before anything else runs. */
  adopted?(link: Link): void;
}

/**
 * Owns the connection of a client or subscriber: opens it (socket, handshake,
 * `prepare`), notices when it drops, and opens another with backoff.
 */
class Supervisor {
  readonly target: RedisTarget;
  /** `127.0.0.1:6379`, for messages. */
  readonly address: string;
  readonly #settings: LinkSettings;
  readonly #user: LinkUser;
  /** The link in use; null before the first, while reconnecting, after close. */
  link: Link | null = null;
  /** The link being set up: connected, not yet adopted. */
  opening: Link | null = null;
  #closed = false;
  /** Why the last connection or attempt failed: for `notConnected()` and events. */
  #lastError: Error | null = null;
  /** Aborts the attempt under way (connect, TLS, handshake). */
  #abort: AbortController | null = null;
  /** Ends the wait between attempts early (on close). */
  #wake: (() => void) | null = null;
  /** The reconnection loop, while it runs. */
  #reconnecting: Promise<void> | null = null;
  #closing: Promise<void> | null = null;

  constructor(target: RedisTarget, settings: LinkSettings, user: LinkUser) {
    this.target = target;
    this.address = formatAddress({
      transport: "tcp",
      hostname: target.hostname,
      port: target.port,
    });
    this.#settings = settings;
    this.#user = user;
    for (
      const [name, value] of [
        ["connectTimeout", settings.connectTimeout],
        ["reconnectDelay", settings.reconnectDelay],
        ["maxReconnectDelay", settings.maxReconnectDelay],
      ] as const
    ) {
      if (value !== undefined && !(Number.isFinite(value) && value > 0)) {
        throw new RangeError(`Invalid ${name} "${value}": must be a positive number of ms`);
      }
    }
    new ReplyParser({ maxReply: settings.maxReply }); // throws now for a bad maxReply
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** The first connection: throws if it cannot be made. */
  async start(): Promise<void> {
    await this.#open(false);
  }

  /** The error for a command issued while there is no connection. */
  notConnected(): RedisConnectionError {
    if (this.#closed) return this.#closedError();
    const why = this.#lastError === null ? "" : ` (${this.#lastError.message})`;
    return new RedisConnectionError(
      `Not connected to redis at ${this.address}${why}; ` +
        (this.#settings.reconnect === false
          ? "reconnecting is off"
          : "reconnecting, try again after the reconnected event"),
      this.address,
      { cause: this.#lastError ?? undefined },
    );
  }

  /** Ends the connection and any attempt; commands waiting reject. Settles when all is released. */
  close(): Promise<void> {
    if (this.#closing !== null) return this.#closing;
    this.#closed = true;
    this.#abort?.abort();
    this.#wake?.();
    const link = this.link;
    this.link = null;
    link?.close(this.#closedError());
    this.#closing = (async () => {
      await this.#reconnecting;
      await link?.finished();
    })();
    return this.#closing;
  }

  #closedError(): RedisConnectionError {
    return new RedisConnectionError(
      `The client for redis at ${this.address} was closed`,
      this.address,
    );
  }

  /** Connects, handshakes, prepares and adopts a link; throws why it could not. */
  async #open(reconnect: boolean, attempts = 0): Promise<void> {
    const timeout = this.#settings.connectTimeout ?? 10_000;
    const abort = new AbortController();
    this.#abort = abort;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      abort.abort();
    }, timeout);
    let link: Link | null = null;
    const closeLink = () =>
      link?.close(new RedisConnectionError("Connection attempt ended", this.address));
    try {
      let conn: Deno.Conn;
      try {
        conn = await dial(this.target, this.#settings.caCerts, abort.signal);
      } catch (error) {
        if (timedOut || abort.signal.aborted) throw error;
        throw new RedisConnectionError(
          `Cannot connect to redis at ${this.address}: ${explainConnectError(error, this.target)}`,
          this.address,
          { cause: error },
        );
      }
      link = new Link(conn, this.address, this.#settings.maxReply, this.#user.unasked, this.#lost);
      this.opening = link;
      abort.signal.addEventListener("abort", closeLink, { once: true });
      await handshake(link, this.target, this.#settings, this.address);
      await this.#user.prepare?.(link);
      if (abort.signal.aborted) throw new Error("aborted");
      // Adopted here, in the same turn as the last reply of `prepare`: no
      // command can slip in between, and held messages follow the event.
      abort.signal.removeEventListener("abort", closeLink);
      this.opening = null;
      this.link = link;
      this.#lastError = null;
      if (reconnect) this.#emit({ type: "reconnected", attempts });
      this.#user.adopted?.(link);
    } catch (error) {
      if (this.opening === link) this.opening = null;
      closeLink();
      await link?.finished();
      if (this.#closed) throw this.#closedError();
      if (timedOut) {
        throw new RedisConnectionError(
          `Cannot connect to redis at ${this.address}: no answer within ${timeout / 1000} s` +
            (this.target.tls ? "; does the server speak TLS on this port?" : ""),
          this.address,
          { cause: error },
        );
      }
      throw error;
    } finally {
      clearTimeout(timer);
      if (this.#abort === abort) this.#abort = null;
    }
  }

  /** A link failed. Only the adopted one matters: a link being set up fails its `#open`. */
  readonly #lost = (link: Link, error: RedisConnectionError): void => {
    if (link !== this.link) return;
    this.link = null;
    this.#lastError = error;
    this.#emit({ type: "disconnected", error });
    if (this.#settings.reconnect !== false && !this.#closed) {
      this.#reconnecting = this.#reconnect().finally(() => this.#reconnecting = null);
    }
  };

  async #reconnect(): Promise<void> {
    const first = this.#settings.reconnectDelay ?? 50;
    const most = this.#settings.maxReconnectDelay ?? 5_000;
    for (let attempt = 1; !this.#closed; attempt++) {
      const base = Math.min(most, first * 2 ** Math.min(attempt - 1, 30));
      const delay = Math.round(base * (0.5 + Math.random() * 0.5));
      this.#emit({ type: "reconnecting", attempt, delay, error: this.#lastError! });
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delay);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = null;
      if (this.#closed) return;
      try {
        await this.#open(true, attempt);
        return;
      } catch (error) {
        if (this.#closed) return;
        this.#lastError = error instanceof Error ? error : new Error(String(error));
      }
    }
  }

  #emit(event: RedisEvent): void {
    const onEvent = this.#settings.onEvent;
    if (onEvent === undefined) return;
    try {
      onEvent(event);
    } catch (error) {
      // The listener's bug is reported like an event listener's, not swallowed,
      // and cannot break the connection.
      reportError(error);
    }
  }
}

/**
 * A Redis client: commands, pipelined over one connection.
 *
 * Issue as many commands as you like without awaiting each: they go out
 * together and their replies come back in order. An error reply rejects its
 * command with a {@linkcode RedisError} and nothing else; a lost connection
 * rejects every command in flight with a {@linkcode RedisConnectionError} and
 * the client reconnects by itself (see {@linkcode RedisOptions.reconnect}).
 *
 * One connection serves commands in order, so a blocking command (BLPOP,
 * XREAD BLOCK) holds up every command behind it: give it a client of its own.
 * SUBSCRIBE and its kin belong to {@linkcode RedisSubscriber}.
 *
 * @example
 * ```ts ignore
 * import { RedisClient } from "./redis.ts";
 *
 * await using redis = await RedisClient.connect("redis://127.0.0.1:6379", { name: "charla" });
 * await redis.command("SET", "room:lobby:topic", "hola", "NX", "PX", 60_000);
 * const topic = await redis.string("GET", "room:lobby:topic"); // "hola"
 * const [a, b] = await Promise.all([redis.integer("INCR", "n"), redis.integer("INCR", "n")]);
 * ```
 */
export class RedisClient implements AsyncDisposable {
  readonly #supervisor: Supervisor;
  readonly #maxPending: number;

  private constructor(target: RedisTarget, options: RedisClientOptions) {
    const maxPending = options.maxPending ?? 100_000;
    if (!Number.isSafeInteger(maxPending) || maxPending < 1) {
      throw new RangeError(`Invalid maxPending "${maxPending}": must be a positive integer`);
    }
    if (options.protocol !== undefined && options.protocol !== 2 && options.protocol !== 3) {
      throw new RangeError(`Invalid protocol "${options.protocol}": must be 2 or 3`);
    }
    this.#maxPending = maxPending;
    const onPush = options.onPush;
    this.#supervisor = new Supervisor(target, options, {
      unasked: (_link, reply) => {
        if (!(reply instanceof PushReply)) return false;
        if (onPush !== undefined) {
          try {
            onPush(reply);
          } catch (error) {
            reportError(error);
          }
        }
        return true;
      },
    });
  }

  /**
   * Connects to `url` (see {@linkcode parseRedisUrl}), authenticates and selects
   * the database. Rejects with a {@linkcode RedisConnectionError} when Redis
   * cannot be reached, or a {@linkcode RedisError} when it refuses the password
   * or database; the message says which and what to check.
   */
  static async connect(url: string, options: RedisClientOptions = {}): Promise<RedisClient> {
    const client = new RedisClient(parseRedisUrl(url), options);
    await client.#supervisor.start();
    return client;
  }

  /** The server's address, `127.0.0.1:6379`. */
  get address(): string {
    return this.#supervisor.address;
  }

  /** Whether a connection is up (false while reconnecting and after close). */
  get connected(): boolean {
    return this.#supervisor.link !== null;
  }

  /**
   * Sends a command; resolves with its reply (see {@linkcode Reply}). Never
   * throws: a bad argument rejects with a `TypeError`, an error reply with a
   * {@linkcode RedisError}, no connection with a {@linkcode RedisConnectionError}.
   */
  command(...args: Arg[]): Promise<Reply> {
    const link = this.#supervisor.link;
    if (link === null) return Promise.reject(this.#supervisor.notConnected());
    if (link.pending >= this.#maxPending) {
      return Promise.reject(
        new RedisConnectionError(
          `Too many commands waiting for redis at ${this.address} (maxPending ` +
            `${this.#maxPending}); it is not keeping up, try again later`,
          this.address,
        ),
      );
    }
    return link.command(args);
  }

  /** {@linkcode command}, for replies that are a string or null (GET, SET, TYPE). */
  async string(...args: Arg[]): Promise<string | null> {
    const reply = await this.command(...args);
    if (reply === null || typeof reply === "string") return reply;
    if (reply instanceof Uint8Array) return decoder.decode(reply);
    throw new TypeError(`Expected a string reply to ${args[0]}, got ${describe(reply)}`);
  }

  /** {@linkcode command}, for replies that are an integer (INCR, DEL, PUBLISH, SADD). */
  async integer(...args: Arg[]): Promise<number> {
    const reply = await this.command(...args);
    if (typeof reply === "number" && Number.isInteger(reply)) return reply;
    throw new TypeError(`Expected an integer reply to ${args[0]}, got ${describe(reply)}`);
  }

  /** {@linkcode command}, with every byte string in the reply decoded (see {@linkcode decodeReply}). */
  async text(...args: Arg[]): Promise<TextReply> {
    return decodeReply(await this.command(...args));
  }

  /**
   * Closes at once: commands still waiting reject with a
   * {@linkcode RedisConnectionError}, and reconnecting stops. Settles when the
   * socket is released.
   */
  close(): Promise<void> {
    return this.#supervisor.close();
  }

  /** Same as {@linkcode close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** A reply's type, for error messages. */
function describe(reply: Reply): string {
  if (reply === null) return "null";
  if (Array.isArray(reply)) return `an array of ${reply.length}`;
  if (reply instanceof Uint8Array) return "a bulk string";
  if (typeof reply === "object") return `a ${reply.constructor.name}`;
  return `${typeof reply} ${String(reply)}`;
}

/** A channel or pattern name as Redis compares them: by bytes. */
function nameKey(name: string | Uint8Array): string {
  if (typeof name === "string") name = encoder.encode(name);
  else if (!(name instanceof Uint8Array)) {
    throw new TypeError(
      `Invalid channel of type ${typeof name}: expected a string or a Uint8Array`,
    );
  }
  let key = "";
  for (let i = 0; i < name.length; i++) key += String.fromCharCode(name[i]);
  return key;
}

/** `bytes` equals the ASCII word `word`. */
function isWord(bytes: Reply, word: string): boolean {
  if (!(bytes instanceof Uint8Array) || bytes.length !== word.length) return false;
  for (let i = 0; i < word.length; i++) if (bytes[i] !== word.charCodeAt(i)) return false;
  return true;
}

/**
 * Pub/sub on a connection of its own. Messages go to `onMessage` in the order
 * Redis sent them, channel and payload as bytes.
 *
 * The subscriber keeps the channels and patterns it was asked for, and on every
 * new connection subscribes to all of them before it reports `reconnected`;
 * messages of the new connection follow that event. A `subscribe()` that
 * rejects because the connection was down still counts: the channel is
 * subscribed on reconnection.
 *
 * @example
 * ```ts ignore
 * import { RedisClient, RedisSubscriber } from "./redis.ts";
 *
 * await using subscriber = await RedisSubscriber.connect("redis://127.0.0.1:6379", {
 *   onMessage: (message) => console.log(message.channelText, message.text),
 *   onEvent: (event) => event.type === "reconnected" && console.log("resync now"),
 * });
 * await subscriber.subscribe("room:lobby");
 * await using redis = await RedisClient.connect("redis://127.0.0.1:6379");
 * await redis.command("PUBLISH", "room:lobby", "hola"); // room:lobby hola
 * ```
 */
export class RedisSubscriber implements AsyncDisposable {
  readonly #supervisor: Supervisor;
  readonly #onMessage: (message: RedisMessage) => void;
  /** Channels and patterns asked for, by their bytes: what every new connection subscribes to. */
  readonly #channels = new Map<string, string | Uint8Array>();
  readonly #patterns = new Map<string, string | Uint8Array>();
  /** Messages that arrived on a link not yet adopted; delivered after `reconnected`. */
  #held: RedisMessage[] = [];
  /** The link `#held` belongs to. */
  #heldLink: Link | null = null;

  private constructor(target: RedisTarget, options: RedisSubscriberOptions) {
    if (typeof options?.onMessage !== "function") {
      throw new TypeError("RedisSubscriber needs an onMessage callback");
    }
    this.#onMessage = options.onMessage;
    // RESP2 always: in RESP2 a subscribed connection receives nothing but pub/sub.
    this.#supervisor = new Supervisor(target, { ...options, protocol: 2 }, {
      unasked: this.#unasked,
      prepare: (link) => this.#resubscribe(link),
      adopted: (link) => this.#release(link),
    });
  }

  /**
   * Connects to `url` (see {@linkcode parseRedisUrl}); rejects like
   * {@linkcode RedisClient.connect}.
   */
  static async connect(url: string, options: RedisSubscriberOptions): Promise<RedisSubscriber> {
    const subscriber = new RedisSubscriber(parseRedisUrl(url), options);
    await subscriber.#supervisor.start();
    return subscriber;
  }

  /** Whether a connection is up with every subscription in place. */
  get connected(): boolean {
    return this.#supervisor.link !== null;
  }

  /** Subscribes to channels; resolves when Redis confirmed every one. */
  subscribe(...channels: (string | Uint8Array)[]): Promise<void> {
    return this.#change("SUBSCRIBE", this.#channels, channels, true);
  }

  /** Subscribes to glob-style patterns (`room:*`); resolves when Redis confirmed every one. */
  psubscribe(...patterns: (string | Uint8Array)[]): Promise<void> {
    return this.#change("PSUBSCRIBE", this.#patterns, patterns, true);
  }

  /** Unsubscribes from channels, or from every channel when none is named. */
  unsubscribe(...channels: (string | Uint8Array)[]): Promise<void> {
    return this.#change("UNSUBSCRIBE", this.#channels, channels, false);
  }

  /** Unsubscribes from patterns, or from every pattern when none is named. */
  punsubscribe(...patterns: (string | Uint8Array)[]): Promise<void> {
    return this.#change("PUNSUBSCRIBE", this.#patterns, patterns, false);
  }

  /** Closes at once; pending subscriptions reject. Settles when the socket is released. */
  close(): Promise<void> {
    return this.#supervisor.close();
  }

  /** Same as {@linkcode close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #change(
    command: string,
    set: Map<string, string | Uint8Array>,
    names: (string | Uint8Array)[],
    add: boolean,
  ): Promise<void> {
    if (this.#supervisor.closed) throw this.#supervisor.notConnected();
    if (names.length === 0) {
      if (add) throw new TypeError(`${command} needs at least one name`);
      names = [...set.values()];
      if (names.length === 0) return;
    }
    const keys = names.map(nameKey);
    for (let i = 0; i < names.length; i++) {
      if (add) set.set(keys[i], names[i]);
      else set.delete(keys[i]);
    }
    // A link being set up takes the command after its resubscription, so no
    // change made meanwhile is lost.
    const link = this.#supervisor.link ?? this.#supervisor.opening;
    if (link === null) {
      // Nothing is subscribed without a connection, and the next one will
      // subscribe to what the set says: only a subscription must wait for it.
      if (add) throw this.#supervisor.notConnected();
      return;
    }
    // Redis confirms each name with a reply of its own.
    await link.command([command, ...names], names.length);
  }

  #resubscribe(link: Link): Promise<unknown> {
    const sent: Promise<Reply>[] = [];
    if (this.#channels.size > 0) {
      sent.push(link.command(["SUBSCRIBE", ...this.#channels.values()], this.#channels.size));
    }
    if (this.#patterns.size > 0) {
      sent.push(link.command(["PSUBSCRIBE", ...this.#patterns.values()], this.#patterns.size));
    }
    return Promise.all(sent);
  }

  readonly #unasked = (link: Link, reply: Reply): boolean => {
    if (!Array.isArray(reply)) return false;
    let message: RedisMessage;
    if (reply.length === 3 && isWord(reply[0], "message")) {
      message = new RedisMessage(reply[1] as Uint8Array, reply[2] as Uint8Array);
    } else if (reply.length === 4 && isWord(reply[0], "pmessage")) {
      message = new RedisMessage(
        reply[2] as Uint8Array,
        reply[3] as Uint8Array,
        reply[1] as Uint8Array,
      );
    } else {
      return false;
    }
    if (link === this.#supervisor.link) {
      this.#deliver(message);
    } else {
      if (this.#heldLink !== link) {
        this.#heldLink = link;
        this.#held = [];
      }
      this.#held.push(message);
    }
    return true;
  };

  /** The link is in use: what it received while being set up goes out now, after the event. */
  #release(link: Link): void {
    const held = this.#heldLink === link ? this.#held : [];
    this.#held = [];
    this.#heldLink = null;
    for (const message of held) this.#deliver(message);
  }

  #deliver(message: RedisMessage): void {
    try {
      this.#onMessage(message);
    } catch (error) {
      reportError(error);
    }
  }
}
