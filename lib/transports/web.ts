/**
 * The web transport: the chat page (web/) and its WebSocket endpoint, served
 * with `Deno.serve` on a port of its own (`--web`), so people with only a
 * browser join the same rooms, under the same names, as line and IRC clients.
 *
 * - `GET /` (and `/app.js`, `/format.js`, `/style.css`): the page, built into
 *   the program (web_files.ts), under a strict Content-Security-Policy, with
 *   `X-Content-Type-Options: nosniff` and `Cache-Control: no-cache` plus an ETag
 *   (a reload costs a 304). Anything else is 404; other methods than GET and
 *   HEAD are 405.
 * - `GET /ws` with an upgrade: one person. Admission is the line port's: the
 *   access rules (403) and the client limit (503), counted in the same
 *   {@linkcode Gate}, checked before the upgrade. A browser's `Origin` must be
 *   the page's own or one given with `--web-origin` (403 otherwise); a client
 *   that sends none is not a browser and is let in.
 * - Frames: see web_protocol.ts. Each frame from a browser is one line of
 *   input: at most `maxLine` bytes, under the flood limit, counted as activity
 *   for the idle timeout.
 *
 * Turns. Deno reads a WebSocket eagerly, and writes only when the event loop
 * gets back to it: while frames keep coming, nothing sent is written (and
 * timers wait). So frames only go into their peer's inbox as they come, and a
 * task handles the inboxes afterwards, for at most 10 ms, sharing the time
 * between peers, before it lets the event loop write (`WebServer.inputReady()`).
 * Lines a browser says go into the core's batch and are relayed when the task
 * is done, as a line client's lines are at the end of its read.
 *
 * Sending. Deno's WebSocket costs about 10 µs per `send()`, so a client that
 * opened `/ws?batch=1` (the page does) does not get a frame per event: what it
 * gets during a task waits in its outbox and then goes out as one frame, a
 * JSON array of the events in order (up to 64 Ki characters a frame; an event
 * alone is sent as it is). The members of a room hold the same events, so the
 * array is joined once per room and task. Other clients get each event as its
 * own frame, at once.
 *
 * Flow control. A WebSocket's only measure of what is still to go out is its
 * `bufferedAmount` (UTF-8 bytes handed to `send()` and not yet written to the
 * socket), so a {@linkcode WebPeer} reports to the core:
 *
 * - `written` = bytes sent - `bufferedAmount`: what the kernel took, the
 *   progress the core's slow rule measures;
 * - behind (`Session.setBehind(true)`) as soon as the outbox and the buffer
 *   hold more than `sendQueue` bytes, and caught up when a watch (every 25 ms
 *   while behind) sees them back under half of that.
 *
 * So a browser that stops reading holds its rooms' senders for a moment and is
 * then dropped as too slow, exactly like a line client. What a WebSocket cannot
 * do is push back on the sender's socket: frames that arrive while a room is
 * held wait in the peer (at most `sendQueue` bytes; past that they are dropped
 * with a `flood` error).
 *
 * Ending a connection. The close frame, with a code that says why
 * (web_protocol.ts), is queued after everything sent before it: a browser reads
 * the last lines, then why. A browser that vanished (a phone that lost its
 * network) is noticed by the pings it does not answer (`pingSeconds`). But
 * Deno's server-side WebSocket cannot abort one connection: `close()` and the
 * pings both wait behind what is buffered. So a browser that stopped reading,
 * once dropped as too slow, is gone as a person (its name is free, its rooms go
 * on, nothing more is sent to it), while its socket stays open until the
 * browser closes it or its TCP connection dies, still counted against the
 * client limit and holding what was buffered for it (at most about `sendQueue`
 * plus the kernel's buffers). At shutdown, what is left after the drain timeout
 * is cut by `Deno.HttpServer.shutdown()`.
 *
 * @module
 */

import type { ChatCore } from "../core/chat.ts";
import { COMMAND_SHARE, type CommandShare, CommandTime } from "../core/commands.ts";
import type { ChatEvent, ErrorCode, LineKind } from "../core/messages.ts";
import type { Peer } from "../core/peer.ts";
import type { Session } from "../core/session.ts";
import type { Gate } from "../net/acceptor.ts";
import { formatAddress, message } from "../net/connection.ts";
import { explainListenError, ListenError } from "../net/listen.ts";
import { JSON_FRAMES_FORMAT, jsonFrame, type JsonFrames, utf8Length } from "./json_format.ts";
import { PAGE_FILES } from "./web_files.ts";
import { CLOSE_CODES, closeText, lineCommand, parseFrame, type WebInput } from "./web_protocol.ts";

/**
 * The page's Content-Security-Policy: its own scripts and styles only, no
 * inline code, and connections to its own origin only (the WebSocket).
 */
export const PAGE_CSP = "default-src 'none'; script-src 'self'; style-src 'self'; " +
  "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; " +
  "frame-ancestors 'none'";

/** Headers on every response. */
const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  "content-security-policy": PAGE_CSP,
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
};

const encoder = new TextEncoder();

/** Commands that are something said: not charged server time (see `WebPeer.#run`). */
const SAYING: ReadonlySet<string> = new Set(["say", "action", "msg"]);

/**
 * The longest one task handles frames before it returns to the event loop, so
 * that what it sent is written, in milliseconds.
 */
const INPUT_MS = 10;
/** Frames one peer has handled before the others get their turn in a task. */
const FRAMES_PER_SHARE = 64;

/** How often the peers that are behind are looked at. */
const WATCH_MS = 25;
/**
 * Largest array frame a batching client gets, in UTF-16 units: big enough that
 * a busy room costs one send per peer per task, small enough that a browser
 * parses each one in well under a frame's time.
 */
const BATCH_LENGTH = 64 * 1024;
/** Wrong passwords before the connection is closed. */
const PASSWORD_TRIES = 3;

/** Options for {@linkcode WebServer}; every one has a default. */
export interface WebServerOptions {
  /** Address to bind. @default {"127.0.0.1"} */
  hostname?: string;
  /** TCP port; 0 picks a free one. @default {8080} */
  port?: number;
  /** A certificate chain and key (PEM text): the page and the socket over HTTPS and WSS. */
  tls?: { cert: string; key: string };
  /**
   * Origins (`https://chat.example.org`) whose pages may open the WebSocket,
   * besides the page's own; `*` for any.
   * @default {[]}
   */
  origins?: readonly string[];
  /** Longest frame accepted from a browser, in UTF-8 bytes. @default {65536} */
  maxLine?: number;
  /** Bytes buffered for a browser past which it is behind. @default {1048576} */
  sendQueue?: number;
  /** Milliseconds a closing connection may take to send what is queued. @default {5000} */
  drainTimeout?: number;
  /**
   * Seconds between pings to a quiet browser; one that does not answer within
   * as long again is disconnected (a phone that left, a peer that stopped reading).
   * @default {30}
   */
  pingSeconds?: number;
  /**
   * Milliseconds a browser has to give the server password (the core's
   * `password`, `--password-file`), when there is one.
   * @default {60000}
   */
  passwordTimeout?: number;
  /**
   * Server time a browser's commands may take, in milliseconds per second
   * and at once; past it, its next frames wait. @default the line port's:
   * 20 ms a second, 5 at once
   */
  commandTime?: CommandShare;
}

/** What the web server needs of the chat server it serves (a `ChatServer` has it all). */
export interface WebHost {
  /** The chat. */
  readonly core: ChatCore;
  /** Admission, shared with the other listeners. */
  readonly gate: Gate;
  /** Registers the web server to be closed when the chat server shuts down. */
  addService?(service: { close(): Promise<void> }): void;
}

/** A file as served: its bytes, type and ETag. */
interface ServedFile {
  readonly body: Uint8Array<ArrayBuffer>;
  readonly type: string;
  readonly etag: string;
}

/** The limits a browser is told in its `welcome` (`limits`), so it can keep to them. */
export interface WebLimits {
  /** Longest frame, in bytes. */
  readonly maxLine: number;
  /** Lines per second; 0: no limit. */
  readonly flood: number;
  /** Seconds of silence before the server disconnects; 0: never. */
  readonly idleSeconds: number;
}

/**
 * The web page and its WebSocket, for a chat server. {@linkcode WebServer.start}
 * binds it; closing the chat server closes it.
 *
 * @example A browser-like client in the default room
 * ```ts
 * import { ChatServer } from "../chat_server.ts";
 * import { WebServer } from "./web.ts";
 * import assert from "node:assert/strict";
 *
 * const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * await using server = new ChatServer(listener, { relay: true });
 * const web = await WebServer.start(server, { port: 0 });
 * const socket = new WebSocket(web.url.replace("http", "ws") + "ws");
 * const events: { type: string; room?: string }[] = [];
 * const joined = Promise.withResolvers<void>();
 * socket.onmessage = (frame) => {
 *   events.push(JSON.parse(frame.data));
 *   if (events.at(-1)?.type === "joined") joined.resolve();
 * };
 * await joined.promise;
 * assert.deepEqual(events.map((e) => e.type), ["welcome", "joined"]);
 * assert.equal(events[1].room, "#lobby");
 * const closed = new Promise((resolve) => socket.onclose = resolve);
 * socket.close();
 * await closed;
 * ```
 */
export class WebServer {
  /** Where it listens. */
  readonly addr: Deno.NetAddr;
  /** The page's address: `http://127.0.0.1:8080/` (https with TLS). */
  readonly url: string;
  /** The chat. */
  readonly core: ChatCore;
  /** What a browser is told of the limits. */
  readonly limits: WebLimits;
  readonly #gate: Gate;
  readonly #http: Deno.HttpServer<Deno.NetAddr>;
  readonly #files: ReadonlyMap<string, ServedFile>;
  readonly #secure: boolean;
  readonly #origins: ReadonlySet<string>;
  readonly #anyOrigin: boolean;
  /** The settings each peer reads. */
  readonly settings: Required<
    Pick<
      WebServerOptions,
      "maxLine" | "sendQueue" | "drainTimeout" | "pingSeconds" | "passwordTimeout" | "commandTime"
    >
  >;
  /** Every connection, from upgrade to close. */
  readonly #peers = new Set<WebPeer>();
  /** Peers by their resume token, while they are attached. */
  readonly #tokens = new Map<string, WebPeer>();
  /** Peers with frames in their outbox, flushed together by one timer. */
  #unflushed = new Set<WebPeer>();
  /** Peers whose lines wait in the core's batch until the task handling frames is done. */
  #saying = new Set<WebPeer>();
  /** Peers with frames in their inbox, and the task that will handle them. */
  #ready = new Set<WebPeer>();
  #inputTimer: ReturnType<typeof setTimeout> | undefined;
  /** Whether a microtask will flush `#unflushed`. */
  #flushQueued = false;
  /** Peers that are behind: looked at every {@linkcode WATCH_MS} until they catch up. */
  readonly #watched = new Set<WebPeer>();
  #watchTimer: ReturnType<typeof setInterval> | undefined;
  #closing: Promise<void> | null = null;

  private constructor(
    host: WebHost,
    http: Deno.HttpServer<Deno.NetAddr>,
    files: Map<string, ServedFile>,
    settings: WebServer["settings"],
    options: WebServerOptions,
    handler: { server?: WebServer },
  ) {
    this.core = host.core;
    this.#gate = host.gate;
    this.#http = http;
    this.#files = files;
    this.settings = settings;
    this.addr = http.addr;
    this.#secure = options.tls !== undefined;
    const scheme = this.#secure ? "https" : "http";
    this.url = `${scheme}://${formatAddress(http.addr)}/`;
    this.#anyOrigin = (options.origins ?? []).includes("*");
    this.#origins = new Set((options.origins ?? []).filter((o) => o !== "*").map(normalizeOrigin));
    const core = host.core.options;
    this.limits = {
      maxLine: settings.maxLine,
      flood: core.flood,
      idleSeconds: core.idleTimeout / 1000,
    };
    handler.server = this;
  }

  /**
   * Binds the web port for `host` (a `ChatServer`) and starts serving; the
   * chat server closes it when it shuts down. A port in use or a bad address
   * is a {@linkcode ListenError} that says what to try.
   */
  static async start(host: WebHost, options: WebServerOptions = {}): Promise<WebServer> {
    const hostname = options.hostname ?? "127.0.0.1";
    const port = options.port ?? 8080;
    for (const origin of options.origins ?? []) {
      if (origin !== "*") normalizeOrigin(origin); // throws on a bad one
    }
    const files = await serveableFiles();
    const settings = {
      maxLine: positive("maxLine", options.maxLine ?? 65536),
      sendQueue: positive("sendQueue", options.sendQueue ?? 1024 * 1024),
      drainTimeout: nonNegative("drainTimeout", options.drainTimeout ?? 5000),
      pingSeconds: positive("pingSeconds", options.pingSeconds ?? 30),
      passwordTimeout: positive("passwordTimeout", options.passwordTimeout ?? 60_000),
      commandTime: options.commandTime ?? COMMAND_SHARE,
    };
    // The handler needs the server, which needs the bound HttpServer: the
    // handler finds it here once the constructor has run (before any request).
    const handler: { server?: WebServer } = {};
    let http: Deno.HttpServer<Deno.NetAddr>;
    try {
      http = Deno.serve({
        hostname,
        port,
        ...(options.tls ?? {}),
        onListen() {},
        onError(error) {
          host.core.log.event({ event: "error", peer: null, message: `web: ${message(error)}` });
          return plain(500, "internal error");
        },
      }, (request, info) => handler.server!.#respond(request, info));
    } catch (error) {
      const where = formatAddress({ transport: "tcp", hostname, port });
      throw new ListenError(
        `Cannot listen on "${where}" for the web page: ${explainListenError(error, port, "--web")}`,
        { cause: error },
      );
    }
    const server = new WebServer(host, http, files, settings, options, handler);
    host.addService?.(server);
    host.core.log.event({
      event: "listening",
      address: server.url,
      relay: host.core.options.relay,
      transport: "web",
    });
    return server;
  }

  /** How many WebSocket connections are open (admitted, or dropped and not yet closed). */
  get connections(): number {
    return this.#peers.size;
  }

  /**
   * Ends every connection: people still here are told the server is shutting
   * down, what is queued goes out (within the drain timeout), and then the
   * HTTP server stops, cutting whatever is left. Calling it again returns the
   * same promise.
   */
  close(): Promise<void> {
    return this.#closing ??= this.#close();
  }

  async #close(): Promise<void> {
    for (const peer of [...this.#peers]) peer.shutdown();
    await Promise.all([...this.#peers].map((peer) => peer.finished));
    await this.#http.shutdown();
    clearTimeout(this.#inputTimer);
    clearInterval(this.#watchTimer);
    this.#watchTimer = undefined;
  }

  /** Answers one HTTP request. */
  #respond(request: Request, info: Deno.ServeHandlerInfo<Deno.NetAddr>): Response {
    const remote = info.remoteAddr;
    const address = formatAddress(remote);
    const rule = this.#gate.refuses(remote.hostname);
    if (rule !== null) {
      this.core.log.event({ event: "refused", address, reason: `web: ${rule}` });
      return plain(403, "access denied");
    }
    const url = new URL(request.url);
    if (url.pathname === "/ws") {
      return this.#upgrade(request, address, url.searchParams.get("batch") === "1");
    }
    const path = url.pathname;
    return this.#serveFile(request, path);
  }

  #serveFile(request: Request, path: string): Response {
    const file = this.#files.get(path === "/index.html" ? "/" : path);
    if (file === undefined) return plain(404, "not found");
    if (request.method !== "GET" && request.method !== "HEAD") {
      return plain(405, "only GET and HEAD", { allow: "GET, HEAD" });
    }
    const headers = {
      ...SECURITY_HEADERS,
      "content-type": file.type,
      etag: file.etag,
      // Always asked again, and answered with a 304 while it has not changed:
      // a new version of the page is never hidden behind an old cached one.
      "cache-control": "no-cache",
    };
    if (matchesEtag(request.headers.get("if-none-match"), file.etag)) {
      return new Response(null, { status: 304, headers });
    }
    return new Response(request.method === "HEAD" ? null : file.body, {
      headers: { ...headers, "content-length": String(file.body.length) },
    });
  }

  #upgrade(request: Request, address: string, batch: boolean): Response {
    if (request.method !== "GET") return plain(405, "only GET", { allow: "GET" });
    if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      return plain(426, "this is the chat's WebSocket", { upgrade: "websocket" });
    }
    const origin = request.headers.get("origin");
    if (!this.#originAllowed(origin, request.headers.get("host"))) {
      this.core.log.event({ event: "refused", address, reason: `web: origin ${origin}` });
      return plain(403, "a page from another origin may not connect here (see --web-origin)");
    }
    if (this.#closing !== null || this.core.closing) return plain(503, "server shutting down");
    const release = this.#gate.enter();
    if (this.#gate.full) {
      release();
      this.core.log.event({ event: "refused", address, reason: "server full" });
      return plain(503, "server full");
    }
    let upgraded: { socket: WebSocket; response: Response };
    try {
      upgraded = Deno.upgradeWebSocket(request, { idleTimeout: this.settings.pingSeconds });
    } catch (error) {
      release();
      return plain(400, `not a WebSocket request: ${message(error)}`);
    }
    const peer = new WebPeer(this, upgraded.socket, address, () => {
      this.#peers.delete(peer);
      this.#watched.delete(peer);
      this.#unflushed.delete(peer);
      this.#ready.delete(peer);
      this.#saying.delete(peer);
      release();
    }, batch);
    this.#peers.add(peer);
    return upgraded.response;
  }

  /**
   * A page may connect from its own origin (the scheme and the Host it was
   * asked for), or from one allowed with `--web-origin`. Without an Origin
   * the client is not a browser, and no page of another site can be behind it.
   */
  #originAllowed(origin: string | null, host: string | null): boolean {
    if (origin === null || this.#anyOrigin) return true;
    const own = host === null ? null : `${this.#secure ? "https" : "http"}://${host}`;
    const normal = origin.toLowerCase();
    return normal === own?.toLowerCase() || this.#origins.has(normal);
  }

  // What the peers ask of their server.

  /** Remembers `peer` under its resume token. */
  register(token: string, peer: WebPeer): void {
    this.#tokens.set(token, peer);
  }

  /** Forgets a token. */
  unregister(token: string): void {
    this.#tokens.delete(token);
  }

  /**
   * `by` resumes the connection that was given `token`: that one ends at
   * once, and its name is free for `by` to take.
   */
  resume(token: string, by: WebPeer): void {
    const old = this.#tokens.get(token);
    if (old === undefined || old === by) return;
    old.replace();
  }

  // Input and output, in turns. Deno reads a WebSocket eagerly: while frames
  // keep coming, the event loop runs one long chain of microtasks, and what
  // was sent is written (and timers fire) only when that chain ends. Measured
  // here: a zero-delay timer fired 100 to 500 ms late under a stream of
  // frames, and frames sent in a loop of 2 s all arrived at its end. Handling
  // each frame as it comes would make a busy sender hold every browser's
  // output until it stops. So frames only go into their peer's inbox as they
  // come (cheap: the chain ends soon), and a task handles the inboxes after
  // it, for at most INPUT_MS at a time, and then returns to the event loop.

  /** `peer` has frames to handle: a task will. */
  inputReady(peer: WebPeer): void {
    this.#ready.add(peer);
    this.#inputTimer ??= setTimeout(() => this.#takeInput(), 0);
  }

  /**
   * Handles the frames in the inboxes for up to {@linkcode INPUT_MS}, a
   * share for each peer in turn; then relays what web peers said (one batch
   * each, as a line client's read), and comes back for the rest later.
   */
  #takeInput(): void {
    this.#inputTimer = undefined;
    const deadline = performance.now() + INPUT_MS;
    let ready = this.#ready;
    this.#ready = new Set();
    while (ready.size > 0 && performance.now() < deadline) {
      const more = new Set<WebPeer>();
      for (const peer of ready) {
        if (peer.takeInput(FRAMES_PER_SHARE)) more.add(peer);
      }
      ready = more;
    }
    for (const peer of ready) this.#ready.add(peer);
    const saying = this.#saying;
    this.#saying = new Set();
    for (const peer of saying) peer.endTurn();
    if (this.#ready.size > 0) this.#inputTimer ??= setTimeout(() => this.#takeInput(), 0);
  }

  /**
   * `peer` said lines while its frames were handled, kept in the core's
   * batch: they are relayed when this task is done with the inboxes.
   */
  said(peer: WebPeer): void {
    this.#saying.add(peer);
  }

  /**
   * Flushes `peer`'s outbox once the code running now is done: everything
   * one task gave it goes out in one send.
   */
  schedule(peer: WebPeer): void {
    this.#unflushed.add(peer);
    if (this.#flushQueued) return;
    this.#flushQueued = true;
    queueMicrotask(() => {
      this.#flushQueued = false;
      const peers = this.#unflushed;
      this.#unflushed = new Set();
      for (const waiting of peers) waiting.flush();
    });
  }

  /** Looks at `peer` every {@linkcode WATCH_MS} while its `tick()` returns true. */
  watch(peer: WebPeer): void {
    this.#watched.add(peer);
    this.#watchTimer ??= setInterval(() => {
      for (const watched of this.#watched) {
        if (!watched.tick()) this.#watched.delete(watched);
      }
      if (this.#watched.size === 0) {
        clearInterval(this.#watchTimer);
        this.#watchTimer = undefined;
      }
    }, WATCH_MS);
  }
}

/** Where a connection is in its life. */
type PeerState =
  /** The socket is opening. */
  | "opening"
  /** Open, waiting for the password. */
  | "admitting"
  /** Open, attached to the core. */
  | "open"
  /** Nothing more is read or sent; what was queued is going out. */
  | "ending"
  /** The socket is closed. */
  | "closed";

/**
 * One browser (or any WebSocket client) as a {@linkcode Peer} of the core: in
 * any number of rooms, named in every frame it sends; its own lines come back
 * to it, as the page's confirmation.
 */
export class WebPeer implements Peer<JsonFrames> {
  readonly format = JSON_FRAMES_FORMAT;
  readonly transport = "web";
  readonly singleRoom = false;
  readonly address: string;
  /** The person, once let in. */
  session: Session | null = null;
  /** Settles when the socket is closed, or when its drain timeout has passed. */
  readonly finished: Promise<void>;
  /** Settles when the socket is closed (its slot in the gate is free then). */
  readonly closed: Promise<void>;
  readonly #server: WebServer;
  readonly #socket: WebSocket;
  readonly #release: () => void;
  readonly #finished = Promise.withResolvers<void>();
  readonly #closedSocket = Promise.withResolvers<void>();
  /** Handed to the browser in its welcome; another connection sending it ends this one. */
  readonly #token = crypto.randomUUID();
  #state: PeerState = "opening";
  /** UTF-8 bytes handed to `socket.send()` so far. */
  #sent = 0;
  /**
   * Frames to send when the server flushes, after the handlers running now:
   * everything one peer gets in one turn of the event loop goes to the socket
   * at once, as one array frame when the client asked for batches.
   */
  #outbox: JsonFrames[] = [];
  /** Their size in UTF-8 bytes. */
  #outboxBytes = 0;
  /** Over `sendQueue` bytes buffered: reported to the session, and watched. */
  #behind = false;
  /** Why the server ends the connection: the `closing` event's reason, and so the close code. */
  #closing: keyof typeof CLOSE_CODES | undefined;
  /** The text of the close frame. */
  #closeText = "";
  /**
   * Frames not handled yet, in order, from `#inboxHead` on: they wait for the
   * server's next task, or for the effects of an earlier one (a room held by
   * someone behind, a name claimed in a shared store).
   */
  #inbox: unknown[] = [];
  #inboxHead = 0;
  /** Their size, in UTF-16 units. */
  #inboxSize = 0;
  /** How many waits the inbox waits for. */
  #waits = 0;
  /** Server time this person's commands may still take. */
  readonly #commandTime: CommandTime;
  /** Frames dropped because the inbox was full. */
  #dropped = 0;
  /** An error event came: the close that follows is a broken connection, not a goodbye. */
  #broken = false;
  /** Lines went into the core's batch this turn; the server relays them when it ends. */
  #saidThisTurn = false;
  /** Wrong passwords so far. */
  #tries = 0;
  #passwordTimer: ReturnType<typeof setTimeout> | undefined;

  /**
   * A peer for an upgraded socket; `release` is called once when it has closed;
   * `batch`: the client takes JSON arrays of events.
   */
  constructor(
    server: WebServer,
    socket: WebSocket,
    address: string,
    release: () => void,
    batch = false,
  ) {
    this.batch = batch;
    this.#server = server;
    this.#commandTime = new CommandTime(server.settings.commandTime);
    this.#socket = socket;
    this.address = address;
    this.#release = release;
    this.finished = this.#finished.promise;
    this.closed = this.#closedSocket.promise;
    socket.onopen = () => this.#opened();
    socket.onmessage = (event) => this.#input(event.data);
    socket.onerror = (event) => this.#failed(event);
    socket.onclose = (event) => this.#closed(event);
  }

  get written(): number {
    return this.#sent - this.#socket.bufferedAmount;
  }

  /** Whether this client asked (`/ws?batch=1`) for several events per frame, as arrays. */
  readonly batch: boolean;

  send(encoded: JsonFrames): void {
    if (this.#state !== "open" && this.#state !== "admitting") return;
    if (this.batch) {
      if (this.#outbox.length === 0) this.#server.schedule(this);
      this.#outbox.push(encoded);
      this.#outboxBytes += encoded.bytes;
    } else {
      // A frame per event costs a send each however it is timed: sent now,
      // they go out as they come instead of in one long loop at the turn's end.
      for (const frame of encoded.frames) this.#socket.send(frame);
      this.#sent += encoded.bytes;
    }
    if (!this.#behind && this.#buffered() > this.#server.settings.sendQueue) {
      this.#behind = true;
      this.session?.setBehind(true);
      // A browser's backlog is not told apart by cause here: all of it holds
      // its rooms (their heavy senders wait), as room lines do on a line port.
      this.session?.setHolding(true);
      this.#server.watch(this);
    }
  }

  /** Bytes not yet written to the socket: in the outbox, and in the WebSocket's buffer. */
  #buffered(): number {
    return this.#outboxBytes + this.#socket.bufferedAmount;
  }

  /**
   * Hands what the outbox (of a client that asked for batches) holds to the
   * socket, as JSON arrays of up to {@linkcode BATCH_LENGTH}.
   */
  flush(): void {
    const outbox = this.#outbox;
    if (outbox.length === 0) return;
    this.#outbox = [];
    const bytes = this.#outboxBytes;
    this.#outboxBytes = 0;
    const socket = this.#socket;
    const batch = batchFrames(outbox, bytes);
    for (const frame of batch.frames) socket.send(frame);
    this.#sent += batch.bytes;
  }

  deliver(event: ChatEvent): void {
    if (event.type === "welcome") {
      // The web's own additions to the welcome: see the module doc of web_protocol.ts.
      const text = JSON.stringify({ ...event, resume: this.#token, limits: this.#server.limits });
      return this.send({ frames: [text], bytes: utf8Length(text) });
    }
    if (event.type === "closing") {
      this.#closing = event.reason;
      this.#closeText = event.text;
    }
    this.send(jsonFrame(event));
  }

  echoes(kind: LineKind): boolean {
    // The page shows what it sent at once, marked as pending, and confirms it
    // when its own line comes back in the room's order.
    return kind !== "notice";
  }

  disconnect(reason: string, now = false): void {
    if (this.#state === "ending" || this.#state === "closed") return;
    this.#state = "ending";
    this.#inbox = [];
    this.#inboxHead = 0;
    this.#server.unregister(this.#token);
    // The core calls this from inside its own loops: the person leaves right
    // after, as a line client does when its read loop ends.
    const session = this.session;
    this.#relaySaid();
    if (session !== null) queueMicrotask(() => session.closed(reason));
    // The close frame goes out after everything queued, in order. A browser
    // that stopped reading never gets it: see the module doc.
    this.flush();
    const [code, text] = now
      ? [CLOSE_CODES.slow, reason]
      : [CLOSE_CODES[this.#closing ?? "quit"], this.#closeText || reason];
    this.#socket.close(code, closeText(text));
    // Shutdown waits for the close, but not longer than the drain timeout.
    const timer = setTimeout(() => this.#finished.resolve(), this.#server.settings.drainTimeout);
    this.finished.then(() => clearTimeout(timer));
  }

  /** The server shuts down: tell whoever has not been told, and end. */
  shutdown(): void {
    if (this.#state === "open" && this.session !== null && !this.#server.core.closing) {
      this.deliver({ type: "closing", reason: "shutdown", text: "server shutting down" });
      this.session.disconnect("server shutting down");
    } else if (this.#state === "opening" || this.#state === "admitting") {
      this.#closing = "shutdown";
      this.disconnect("server shutting down");
    }
  }

  /** Another connection resumed this one: its person leaves now, the name is free. */
  replace(): void {
    if (this.#state !== "open") return;
    this.#closing = "replaced";
    this.#closeText = "replaced by a new connection";
    // At once, not in a microtask: the new connection's next frame may be the
    // name this one holds.
    this.session?.closed("reconnected");
    this.disconnect("reconnected");
  }

  /** Looked at by the server's watch while behind; returns whether to keep watching. */
  tick(): boolean {
    if (this.#state !== "open") return false;
    if (this.#buffered() > this.#server.settings.sendQueue / 2) return true;
    this.#behind = false;
    this.session?.setBehind(false);
    this.session?.setHolding(false);
    return false;
  }

  #opened(): void {
    if (this.#state !== "opening") return;
    if (!this.#server.core.passwordRequired) return this.#attach();
    this.#state = "admitting";
    this.#refuse("password", 'this chat needs a password: send {"type":"pass","password":"…"}');
    this.#passwordTimer = setTimeout(() => {
      if (this.#state !== "admitting") return;
      this.#refuse("password", "no password given in time");
      this.#endAdmission("no password given in time");
    }, this.#server.settings.passwordTimeout);
  }

  /** Lets the person in: a session, the welcome, and the default room. */
  #attach(): void {
    clearTimeout(this.#passwordTimer);
    const core = this.#server.core;
    this.#state = "open";
    const session = core.attach(this);
    this.session = session;
    this.#server.register(this.#token, this);
    core.welcome(session);
    // A multi-room peer is put nowhere by the core; the page expects to be
    // in the default room first, as everyone else is.
    if (core.options.relay) session.join(core.options.defaultRoom);
  }

  /** An error for a connection that has no session (yet). */
  #refuse(code: ErrorCode, text: string): void {
    this.send(jsonFrame({ type: "error", code, text }));
  }

  #endAdmission(reason: string): void {
    this.#server.core.log.event({ event: "refused", address: this.address, reason });
    this.#closing = "password";
    this.#closeText = reason;
    this.disconnect(reason);
  }

  /**
   * One frame from the browser: into the inbox, within the send queue's
   * size (see `WebServer.inputReady()`); past it, frames are dropped, with
   * one `flood` error.
   */
  #input(data: unknown): void {
    if (this.#state !== "open" && this.#state !== "admitting") return;
    const size = typeof data === "string" ? data.length : 0;
    if (this.#inboxSize + size > this.#server.settings.sendQueue) {
      if (this.#dropped++ === 0) {
        this.#problem(
          "flood",
          "frames come faster than they can be handled: dropped until the server catches up",
        );
      }
      return;
    }
    this.#inbox.push(data);
    this.#inboxSize += size;
    if (this.#waits === 0) this.#server.inputReady(this);
  }

  /**
   * Handles up to `most` frames of the inbox, in order, stopping early when
   * one has to wait (its wait, when done, makes the peer ready again).
   * Returns whether frames are left that could be handled now.
   */
  takeInput(most: number): boolean {
    const inbox = this.#inbox;
    let taken = 0;
    while (this.#inboxHead < inbox.length && taken < most) {
      if (this.#waits > 0 || (this.#state !== "open" && this.#state !== "admitting")) break;
      const data = inbox[this.#inboxHead];
      inbox[this.#inboxHead++] = undefined;
      this.#inboxSize -= typeof data === "string" ? data.length : 0;
      taken++;
      const wait = this.#frame(data);
      if (wait !== undefined) this.#waitFor(wait);
    }
    if (this.#inboxHead === inbox.length) {
      this.#inbox = [];
      this.#inboxHead = 0;
      if (this.#dropped > 0) {
        this.session?.info(`${this.#dropped} frames were dropped while the server caught up`);
        this.#dropped = 0;
      }
      return false;
    }
    return this.#waits === 0 && (this.#state === "open" || this.#state === "admitting");
  }

  /** Frames wait for `wait` (a room held by someone behind, a name being claimed). */
  #waitFor(wait: Promise<unknown>): void {
    this.#waits++;
    const done = () => {
      if (--this.#waits === 0 && this.#inboxHead < this.#inbox.length) {
        this.#server.inputReady(this);
      }
    };
    wait.then(done, done);
  }

  /**
   * Reads and runs one frame. Returns a promise when the next frame must wait
   * for it (see `Session.flush()` and `Session.run()`).
   */
  #frame(data: unknown): Promise<unknown> | undefined {
    if (typeof data !== "string") {
      this.#problem("usage", "binary frames are not read: send JSON as text");
      return undefined;
    }
    const maxLine = this.#server.settings.maxLine;
    if (data.length > maxLine || (data.length * 3 > maxLine && utf8Length(data) > maxLine)) {
      this.#problem("too_long", `frame longer than ${maxLine} bytes was dropped`);
      this.#server.core.log.event({
        event: "error",
        peer: this.session,
        message: `web frame longer than ${maxLine} bytes dropped`,
      });
      return undefined;
    }
    const input = parseFrame(data);
    if ("error" in input) {
      this.#problem(input.error, input.text);
      return undefined;
    }
    if (this.#state === "admitting") {
      this.#password(input);
      return undefined;
    }
    const session = this.session!;
    switch (input.kind) {
      case "pass":
        session.info("you are in already: no password needed now");
        return undefined;
      case "resume":
        this.#server.resume(input.token, this);
        return undefined;
      case "line": {
        if (this.#sayLine(session, input.room, input.text)) return undefined;
        const command = lineCommand(input.room, input.text);
        if ("error" in command) {
          session.error(command.error, command.text);
          return undefined;
        }
        return this.#run(session, command);
      }
      case "command":
        return this.#run(session, input.command);
    }
  }

  /**
   * The hot path: plain text for a room this person is in goes into the core's
   * batch, and is relayed when the server's task is done with the inboxes (see
   * `WebServer.said()`), so the lines of a busy sender are one batch, not one
   * relay each. False for anything else (a command, a room they are not in),
   * which the caller runs as a command.
   */
  #sayLine(session: Session, name: string, text: string): boolean {
    if (text.startsWith("/") && !text.startsWith("//")) return false;
    const room = this.#server.core.findRoom(name);
    if (room === undefined || !session.rooms.includes(room)) return false;
    session.lastActive = performance.now();
    const bytes = encoder.encode(text.startsWith("//") ? text.slice(1) : text);
    session.sayIn(room, bytes, 0, bytes.length, "message");
    if (!this.#saidThisTurn) {
      this.#saidThisTurn = true;
      this.#server.said(this);
    }
    return true;
  }

  /**
   * Lines said this turn go out now, before the person leaves: leaving drops
   * what is still in the core's batch.
   */
  #relaySaid(): void {
    if (!this.#saidThisTurn) return;
    this.#saidThisTurn = false;
    this.session?.flush();
  }

  /** The server's task is done: relay the lines said in it, and wait as the core says. */
  endTurn(): void {
    this.#saidThisTurn = false;
    if (this.#state !== "open" || this.session === null) return;
    const wait = this.session.flush();
    if (wait !== undefined) this.#waitFor(wait);
  }

  #run(session: Session, command: Parameters<Session["run"]>[0]): Promise<unknown> | undefined {
    // What people say (in a room, as an action, privately) is not charged, as
    // IRC's PRIVMSG is not: its relay is bounded by the flood limit and flow
    // control. Any other command is charged the time it took, not the relay of
    // what was said before it (the flush), which grows with the room, not the command.
    const charged = !SAYING.has(command.type);
    const started = charged ? performance.now() : 0;
    const later = session.run(command);
    // Past this person's share of server time, their next frames wait too.
    if (charged) this.#commandTime.charge(started);
    const wait = session.flush();
    const waits = [later, wait, this.#commandTime.wait()].filter((w) => w !== undefined);
    return waits.length <= 1 ? waits[0] : Promise.all(waits);
  }

  /** A frame before the person is let in: only the password counts. */
  #password(input: WebInput): void {
    if (input.kind !== "pass") {
      return this.#refuse("password", 'send the password first: {"type":"pass","password":"…"}');
    }
    if (this.#server.core.checkPassword(input.password)) return this.#attach();
    if (++this.#tries < PASSWORD_TRIES) return this.#refuse("password", "wrong password");
    this.#refuse("password", "wrong password; closing");
    this.#endAdmission("wrong password");
  }

  /** An error about a frame: to the session, or before it exists, straight to the socket. */
  #problem(code: ErrorCode, text: string): void {
    if (this.session !== null) this.session.error(code, text);
    else this.#refuse(code, text);
  }

  #failed(event: Event): void {
    this.#broken = true;
    if (this.#state !== "open" || this.session === null) return;
    const text = event instanceof ErrorEvent ? event.message : "WebSocket error";
    this.#server.core.log.event({ event: "error", peer: this.session, message: text });
  }

  #closed(event: CloseEvent): void {
    if (this.#state === "closed") return;
    const was = this.#state;
    this.#state = "closed";
    clearTimeout(this.#passwordTimer);
    this.#commandTime.stop();
    this.#inbox = [];
    this.#inboxHead = 0;
    this.#outbox = [];
    this.#outboxBytes = 0;
    this.#server.unregister(this.#token);
    if (this.#behind) {
      this.#behind = false;
      this.session?.setBehind(false);
    }
    if (was === "open" && this.session !== null) {
      this.#relaySaid();
      // 1000 and 1001 are a browser's own goodbye (a closed tab, a page left);
      // anything else, or after an error (pings not answered), is a connection that broke.
      const goodbye = !this.#broken && (event.code === 1000 || event.code === 1001);
      this.session.closed(goodbye ? "eof" : "connection lost");
    }
    this.#finished.resolve();
    this.#release();
    this.#closedSocket.resolve();
  }
}

/**
 * The last outbox made into array frames, and what it became: the members of a
 * room are flushed one after the other and, but for their own replies, hold the
 * same frames in the same order, so the texts are joined once per room and
 * turn, not once per member.
 */
let lastBatch: { outbox: readonly JsonFrames[]; frames: JsonFrames } | null = null;

/**
 * `outbox` (`bytes` in all) as array frames of up to {@linkcode BATCH_LENGTH}
 * (an event alone in its frame is sent as it is).
 */
function batchFrames(outbox: readonly JsonFrames[], bytes: number): JsonFrames {
  const last = lastBatch;
  if (
    last !== null && last.outbox.length === outbox.length &&
    last.outbox.every((e, i) => e === outbox[i])
  ) {
    return last.frames;
  }
  const texts = outbox.length === 1 ? outbox[0].frames : outbox.flatMap((e) => e.frames);
  const frames: string[] = [];
  let total = bytes;
  let from = 0;
  let size = 0;
  for (let i = 0; i < texts.length; i++) {
    size += texts[i].length;
    if (size >= BATCH_LENGTH || i === texts.length - 1) {
      if (i === from) frames.push(texts[i]);
      else {
        frames.push(`[${texts.slice(from, i + 1).join(",")}]`);
        total += i - from + 2; // the brackets and commas: the socket counts every byte
      }
      from = i + 1;
      size = 0;
    }
  }
  const batch = { frames, bytes: total };
  lastBatch = { outbox, frames: batch };
  return batch;
}

/** The page's files, with their ETags. */
async function serveableFiles(): Promise<Map<string, ServedFile>> {
  const encoder = new TextEncoder();
  const files = new Map<string, ServedFile>();
  for (const file of PAGE_FILES) {
    const body = encoder.encode(file.text);
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", body));
    const hex = [...digest.subarray(0, 12)].map((b) => b.toString(16).padStart(2, "0")).join("");
    files.set(file.path, { body, type: file.type, etag: `"${hex}"` });
  }
  return files;
}

/** Whether an If-None-Match header names `etag` (or is `*`). */
function matchesEtag(header: string | null, etag: string): boolean {
  if (header === null) return false;
  return header.split(",").some((tag) => {
    const t = tag.trim();
    return t === "*" || t === etag || t === `W/${etag}`;
  });
}

/** A short text response with the security headers. */
function plain(status: number, text: string, headers: Record<string, string> = {}): Response {
  return new Response(`${text}\n`, {
    status,
    headers: {
      ...SECURITY_HEADERS,
      "content-type": "text/plain; charset=utf-8",
      "cache-control": "no-store",
      ...headers,
    },
  });
}

/**
 * An origin as browsers send it (`https://chat.example.org`, a port only when
 * not the scheme's own), in lower case.
 *
 * @throws {TypeError} When `origin` is not an http or https origin.
 */
export function normalizeOrigin(origin: string): string {
  let url: URL;
  try {
    url = new URL(origin);
  } catch (error) {
    throw new TypeError(`Invalid origin "${origin}": not a URL`, { cause: error });
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new TypeError(`Invalid origin "${origin}": must start with http:// or https://`);
  }
  if (url.pathname !== "/" || url.search !== "" || url.hash !== "" || url.username !== "") {
    throw new TypeError(`Invalid origin "${origin}": only a scheme, host and port`);
  }
  return url.origin.toLowerCase();
}

function positive(name: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0) {
    throw new RangeError(`Invalid ${name} "${value}": must be a number above 0`);
  }
  return value;
}

function nonNegative(name: string, value: number): number {
  if (!Number.isFinite(value) || value < 0) {
    throw new RangeError(`Invalid ${name} "${value}": must be a number of at least 0`);
  }
  return value;
}
