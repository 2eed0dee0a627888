/**
 * The chat server: the core, and the listeners that feed it (the line port
 * first; IRC and the web page plug in the same way), sharing one gate for the
 * access rules and the client limit, and graceful shutdown.
 *
 * @module
 */

import { bannedText } from "./core/bans.ts";
import type { CommandShare } from "./core/commands.ts";
import { ChatCore, type ChatCoreOptions } from "./core/chat.ts";
import type { PeerInfo } from "./core/events.ts";
import type { Room } from "./core/room.ts";
import type { Session } from "./core/session.ts";
import { Acceptor, type ConnectionHandler, Gate } from "./net/acceptor.ts";
import type { AccessList } from "./net/cidr.ts";
import { formatAddress } from "./net/connection.ts";
import { lineTransport } from "./transports/line.ts";

/** Options for {@linkcode ChatServer}; every one has a default. */
export interface ChatServerOptions extends ChatCoreOptions {
  /**
   * Longest line accepted from a client, in bytes.
   * @default {65536}
   */
  maxLine?: number;
  /**
   * How far behind, in queued bytes, a client may fall. While one is further
   * behind on what its rooms say, heavy senders there wait (TCP pushes back on
   * them, and nothing is lost; see `lightRate`); one that is behind for any
   * cause and catches up by less than `minProgress` bytes within
   * `slowTimeout` is disconnected as too slow, and so is one whose queue would
   * reach eight times this.
   * @default {1048576}
   */
  sendQueue?: number;
  /**
   * Most clients connected at once, on every port together (those still in
   * their TLS handshake count); one more is told the server is full.
   * @default {1024}
   */
  maxClients?: number;
  /**
   * Most clients connected at once from one address; one more is told so.
   * 0 for no limit (server.ts sets 16).
   * @default {0}
   */
  maxPerAddress?: number;
  /**
   * Milliseconds a line may take to arrive, from its first byte to its end
   * of line: a client that trickles bytes and never ends a line is
   * disconnected. 0 for no limit (server.ts sets 30 s).
   * @default {0}
   */
  lineTimeout?: number;
  /**
   * The share of server time each line client's commands may take; past it,
   * the rest of that client's input waits. @default 20 ms a second, 5 at once, 50 µs a command at least
   */
  commandTime?: CommandShare;
  /** Which addresses may connect. @default everyone */
  access?: AccessList;
  /**
   * Milliseconds that shutdown (or a client's end) waits for queued lines to be written.
   * @default {5000}
   */
  drainTimeout?: number;
  /**
   * Milliseconds a TLS client has to complete its handshake.
   * @default {10000}
   */
  handshakeTimeout?: number;
  /** Aborting it shuts the server down gracefully. */
  signal?: AbortSignal;
}

/** A transport's own server (the web page's), which the chat server closes as it shuts down. */
export interface Service {
  /**
   * Lets what is queued go out (within the drain timeout), then closes every
   * connection left; settles when done. The core has disconnected everyone by then.
   */
  close(): Promise<void>;
}

/**
 * A chat server on an already-bound listener, speaking the line protocol
 * there; {@linkcode ChatServer.serve} adds listeners for other transports.
 *
 * @example A room with two clients
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
  /** The address of the first listener (the real port when bound to port 0). */
  readonly addr: Deno.Addr;
  /** Settles when the server has shut down and every connection is closed. */
  readonly finished: Promise<void>;
  /** The chat itself: rooms, people, store, log. */
  readonly core: ChatCore;
  readonly #gate: Gate;
  readonly #acceptors: Acceptor[] = [];
  /** Servers of other kinds (the web page's), closed at shutdown. */
  readonly #services: Service[] = [];
  readonly #handshakeTimeout: number;
  readonly #drainTimeout: number;
  /** The shutdown in progress, if any. */
  #shutdown: Promise<void> | null = null;

  /** Starts serving the line protocol on `listener` at once. */
  constructor(listener: Deno.Listener, options: ChatServerOptions = {}) {
    this.addr = listener.addr;
    this.#drainTimeout = nonNegative("drainTimeout", options.drainTimeout ?? 5000);
    this.#handshakeTimeout = nonNegative("handshakeTimeout", options.handshakeTimeout ?? 10_000);
    const sendQueue = options.sendQueue ?? 1024 * 1024;
    this.core = new ChatCore({ minProgress: sendQueue / 16, ...options });
    this.#gate = new Gate({
      maxClients: nonNegative("maxClients", options.maxClients ?? 1024),
      maxPerAddress: nonNegative("maxPerAddress", options.maxPerAddress ?? 0),
      access: options.access,
      banned: (hostname) => {
        const ban = this.core.bans.forAddress(hostname);
        return ban === null ? null : { reason: `banned by ${ban.mask}`, text: bannedText(ban) };
      },
    });
    options.signal?.addEventListener("abort", () => this.shutdown(), { once: true });
    this.serve(
      listener,
      lineTransport(this.core, {
        maxLine: options.maxLine,
        sendQueue,
        drainTimeout: this.#drainTimeout,
        lineTimeout: nonNegative("lineTimeout", options.lineTimeout ?? 0),
        commandTime: options.commandTime,
      }),
    );
    // The first listener's loop ends only when the server shuts down (or its
    // listener fails for good, which shuts the server down too).
    this.finished = this.#acceptors[0].finished.then(() => this.shutdown());
  }

  /**
   * Serves another listener with `handler` (an IRC or web transport), under
   * the same gate: access rules and client limit.
   */
  serve(listener: Deno.Listener, handler: ConnectionHandler): Acceptor {
    const acceptor = new Acceptor(listener, handler, {
      gate: this.#gate,
      log: this.core.log,
      handshakeTimeout: this.#handshakeTimeout,
    });
    this.#acceptors.push(acceptor);
    this.core.log.event({
      event: "listening",
      address: formatAddress(listener.addr),
      relay: this.core.options.relay,
      transport: handler.transport,
    });
    return acceptor;
  }

  /**
   * Closes `service` (a transport with a server of its own, such as the web
   * page's) when this server shuts down: after everyone was told and
   * disconnected, before the server waits for the last connection to go.
   */
  addService(service: Service): void {
    this.#services.push(service);
  }

  /** The gate every listener shares: for transports served outside {@linkcode serve}. */
  get gate(): Gate {
    return this.#gate;
  }

  /** Whether people talk with each other (in rooms). */
  get relay(): boolean {
    return this.core.options.relay;
  }

  /** How many clients are connected. */
  get clientCount(): number {
    return this.core.size;
  }

  /** The connected clients, in the order they came. */
  clients(): Session[] {
    return [...this.core.directory.entries()];
  }

  /** The rooms with someone in them. */
  rooms(): Room[] {
    return [...this.core.rooms()];
  }

  /** The client with this name (any case) or id (`7`, `#7`). */
  find(target: string): Session | undefined {
    return this.core.directory.find(target);
  }

  /**
   * The operator says `text` to everyone (or to one room): `<server> text`.
   * Returns how many got it; undefined when there is no such room.
   */
  say(text: string, room?: string): number | undefined {
    return this.core.say(text, room);
  }

  /** The operator says `text` to one client: `*server* text`. Undefined when there is no such client. */
  whisper(target: string, text: string): PeerInfo | undefined {
    return this.core.whisper(target, text);
  }

  /** Disconnects one client, telling it why. Undefined when there is no such client. */
  kick(target: string, reason = ""): PeerInfo | undefined {
    return this.core.kick(target, reason);
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
    for (const acceptor of this.#acceptors) acceptor.close();
    await this.core.shutdown(reason);
    await Promise.all(this.#services.map((service) => service.close()));
    // Connections refused or still in admission close on their own deadlines.
    await this.#gate.idle();
    await Promise.all(this.#acceptors.map((acceptor) => acceptor.finished));
    this.core.log.event({ event: "shutdown", reason });
  }
}

function nonNegative(name: string, value: number): number {
  if (!Number.isFinite(value) || value < 0) {
    throw new RangeError(`Invalid ${name} "${value}": must be a number of at least 0`);
  }
  return value;
}
