/**
 * Test helpers for the web transport: a chat server with its web port, a
 * WebSocket client that records every event (Deno's own `WebSocket`), a raw
 * one over a TCP or TLS socket for what a browser API hides: the HTTP status of
 * a refused upgrade, headers of our choosing, and a client that stops reading;
 * and what the chat page (web/) shows, for tests that drive it in chromium.
 *
 * Nothing sleeps: every wait is for a frame, an event or a close, bounded by a
 * deadline that fails the test.
 *
 * @module
 */

import { ChatServer, type ChatServerOptions } from "../lib/chat_server.ts";
import { WebServer, type WebServerOptions } from "../lib/transports/web.ts";
import type { Page } from "./_browser.ts";
import { MemoryLog, within } from "./_helpers.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A chat server on 127.0.0.1 with its web port, both on ephemeral ports. */
export interface WebTestServer extends AsyncDisposable {
  readonly server: ChatServer;
  readonly web: WebServer;
  readonly log: MemoryLog;
  /** The line port. */
  readonly port: number;
  /** The web port. */
  readonly webPort: number;
  /** `ws://127.0.0.1:<web port>/ws`. */
  readonly wsUrl: string;
}

/** Starts a chat server and its web server; dispose of it to shut both down. */
export async function startWebServer(
  options: ChatServerOptions & { web?: WebServerOptions } = {},
): Promise<WebTestServer> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const log = new MemoryLog();
  const server = new ChatServer(listener, { log, ...options });
  const web = await WebServer.start(server, {
    port: 0,
    maxLine: options.maxLine,
    sendQueue: options.sendQueue,
    drainTimeout: options.drainTimeout,
    ...options.web,
  });
  return {
    server,
    web,
    log,
    port: listener.addr.port,
    webPort: web.addr.port,
    wsUrl: `ws://127.0.0.1:${web.addr.port}/ws`,
    [Symbol.asyncDispose]: () => server.shutdown(),
  };
}

/** A server event as the tests read it. */
// deno-lint-ignore no-explicit-any
export type Event = Record<string, any>;

/** Deno's WebSocket client, with every event it received kept in order. */
export class WebClient implements AsyncDisposable {
  readonly socket: WebSocket;
  /** Every event received, oldest first (also those already waited for). */
  readonly events: Event[] = [];
  /** Settles with the close event. */
  readonly closed: Promise<CloseEvent>;
  /** Index in `events` after the last one {@linkcode next} returned. */
  #cursor = 0;
  #waiters: (() => void)[] = [];

  private constructor(socket: WebSocket) {
    this.socket = socket;
    socket.onmessage = (message) => {
      this.events.push(JSON.parse(message.data as string));
      for (const wake of this.#waiters.splice(0)) wake();
    };
    this.closed = new Promise((resolve) => {
      socket.addEventListener("close", (event) => {
        resolve(event);
        for (const wake of this.#waiters.splice(0)) wake();
      });
    });
  }

  /**
   * Opens a WebSocket to `url` (with `origin`, as a browser would send it) and
   * waits until it is open; rejects when the server refuses it.
   */
  static async open(url: string, options: { origin?: string } = {}): Promise<WebClient> {
    const socket = options.origin === undefined
      ? new WebSocket(url)
      // Deno's client takes headers: the Origin a page of that site would send.
      : new WebSocket(url, { headers: { origin: options.origin } } as unknown as string[]);
    const client = new WebClient(socket);
    const opened = new Promise<void>((resolve, reject) => {
      socket.addEventListener("open", () => resolve(), { once: true });
      socket.addEventListener("error", () => reject(new Error(`Cannot open ${url}`)), {
        once: true,
      });
    });
    try {
      await within(opened, `the WebSocket to ${url} to open`);
    } catch (error) {
      await client.closed;
      throw error;
    }
    return client;
  }

  /** Opens a client and waits until it is in `#lobby` (or the default room). */
  static async joined(url: string): Promise<WebClient> {
    const client = await WebClient.open(url);
    await client.next((e) => e.type === "joined");
    return client;
  }

  /** The name the welcome gave (or the last `renamed`). */
  get name(): string {
    let name = "";
    for (const e of this.events) {
      if (e.type === "welcome" || e.type === "renamed") name = e.you.name;
    }
    return name;
  }

  /** Sends a frame: an object as JSON, or a string as it is. */
  send(frame: Event | string): void {
    this.socket.send(typeof frame === "string" ? frame : JSON.stringify(frame));
  }

  /** Sends a line as the page's box does. */
  say(room: string, text: string): void {
    this.send({ type: "line", room, text });
  }

  /**
   * The first event after the last one returned that passes `test`; events
   * skipped on the way are still in `events`. Fails when the socket closes first.
   */
  async next(test: (event: Event) => boolean, what = test.toString()): Promise<Event> {
    const find = async (): Promise<Event> => {
      while (true) {
        for (; this.#cursor < this.events.length; this.#cursor++) {
          const event = this.events[this.#cursor];
          if (test(event)) {
            this.#cursor++;
            return event;
          }
        }
        if (this.socket.readyState === WebSocket.CLOSED) {
          throw new Error(
            `The WebSocket closed before an event ${what}; the last ones:\n` +
              this.events.slice(-10).map((e) => JSON.stringify(e).slice(0, 200)).join("\n"),
          );
        }
        await new Promise<void>((resolve) => this.#waiters.push(resolve));
      }
    };
    return await within(find(), `an event ${what}`);
  }

  /** Closes (once) and waits for the close. */
  async close(): Promise<CloseEvent> {
    if (this.socket.readyState <= WebSocket.OPEN) this.socket.close();
    return await within(this.closed, "the WebSocket to close");
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close().then(() => {});
  }
}

/** A frame as a {@linkcode RawWebSocket} reads it. */
export interface RawFrame {
  /** 1 text, 2 binary, 8 close, 9 ping, 10 pong. */
  readonly opcode: number;
  readonly payload: Uint8Array;
}

/** What an upgrade request got: the status line's code and the headers (lower case). */
export interface UpgradeAnswer {
  readonly status: number;
  readonly headers: Map<string, string>;
}

/**
 * A WebSocket client written against a raw socket: it sends the headers it is
 * told to, reads the server's answer itself, and reads frames only when asked,
 * so it can stop reading altogether.
 */
export class RawWebSocket implements Disposable {
  readonly conn: Deno.Conn;
  /** The server's answer to the upgrade. */
  readonly answer: UpgradeAnswer;
  /** Bytes read and not yet taken as frames. */
  #buffer: Uint8Array;

  private constructor(conn: Deno.Conn, answer: UpgradeAnswer, rest: Uint8Array) {
    this.conn = conn;
    this.answer = answer;
    this.#buffer = rest;
  }

  /**
   * Connects to 127.0.0.1:`port` (over TLS when `tls` is given) and asks for
   * the upgrade; resolves once the server answered, whatever the status.
   */
  static async connect(
    port: number,
    options: { origin?: string; path?: string; tls?: { caCerts: string[]; hostname: string } } = {},
  ): Promise<RawWebSocket> {
    const conn = options.tls === undefined
      ? await Deno.connect({ hostname: "127.0.0.1", port })
      : await Deno.connectTls({
        hostname: options.tls.hostname,
        port,
        caCerts: options.tls.caCerts,
      });
    const key = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
    const host = options.tls?.hostname ?? "127.0.0.1";
    const request = [
      `GET ${options.path ?? "/ws"} HTTP/1.1`,
      `Host: ${host}:${port}`,
      "Upgrade: websocket",
      "Connection: Upgrade",
      `Sec-WebSocket-Key: ${key}`,
      "Sec-WebSocket-Version: 13",
      ...(options.origin === undefined ? [] : [`Origin: ${options.origin}`]),
      "",
      "",
    ].join("\r\n");
    await writeAll(conn, encoder.encode(request));
    let seen: Uint8Array = new Uint8Array(0);
    while (true) {
      const end = indexOf(seen, encoder.encode("\r\n\r\n"));
      if (end >= 0) {
        const head = decoder.decode(seen.subarray(0, end)).split("\r\n");
        const status = Number(head[0].split(" ")[1]);
        const headers = new Map(
          head.slice(1).map((line) => {
            const colon = line.indexOf(":");
            return [line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim()];
          }),
        );
        return new RawWebSocket(conn, { status, headers }, seen.slice(end + 4));
      }
      const chunk = new Uint8Array(4096);
      const n = await within(conn.read(chunk), "the answer to the upgrade");
      if (n === null) throw new Error("The server closed before answering the upgrade");
      seen = concat(seen, chunk.subarray(0, n));
    }
  }

  /** Sends one masked frame (a client must mask), `text` by default. */
  async send(payload: string | Uint8Array, opcode = 1): Promise<void> {
    const data = typeof payload === "string" ? encoder.encode(payload) : payload;
    const length = data.length;
    const head = length < 126 ? 2 : length < 65536 ? 4 : 10;
    const frame = new Uint8Array(head + 4 + length);
    frame[0] = 0x80 | opcode;
    if (length < 126) frame[1] = 0x80 | length;
    else if (length < 65536) {
      frame[1] = 0x80 | 126;
      new DataView(frame.buffer).setUint16(2, length);
    } else {
      frame[1] = 0x80 | 127;
      new DataView(frame.buffer).setBigUint64(2, BigInt(length));
    }
    const mask = crypto.getRandomValues(new Uint8Array(4));
    frame.set(mask, head);
    for (let i = 0; i < length; i++) frame[head + 4 + i] = data[i] ^ mask[i & 3];
    await writeAll(this.conn, frame);
  }

  /** The next frame from the server, or null when the connection ended. */
  async frame(): Promise<RawFrame | null> {
    while (true) {
      const frame = this.#take();
      if (frame !== null) return frame;
      const chunk = new Uint8Array(64 * 1024);
      let n: number | null;
      try {
        n = await within(this.conn.read(chunk), "a frame");
      } catch (error) {
        if (error instanceof Deno.errors.ConnectionReset) return null;
        throw error;
      }
      if (n === null) return null;
      this.#buffer = concat(this.#buffer, chunk.subarray(0, n));
    }
  }

  /** The next text frame's JSON, answering pings and skipping other frames; null at the end. */
  async event(): Promise<Event | null> {
    while (true) {
      const frame = await this.frame();
      if (frame === null || frame.opcode === 8) return null;
      if (frame.opcode === 9) await this.send(frame.payload, 10);
      if (frame.opcode === 1) return JSON.parse(decoder.decode(frame.payload));
    }
  }

  /** Reads events until one passes `test`; fails at the end of the connection. */
  async until(test: (event: Event) => boolean, what = test.toString()): Promise<Event> {
    while (true) {
      const event = await this.event();
      if (event === null) throw new Error(`The connection ended before an event ${what}`);
      if (test(event)) return event;
    }
  }

  #take(): RawFrame | null {
    const b = this.#buffer;
    if (b.length < 2) return null;
    let length = b[1] & 0x7f;
    let at = 2;
    if (length === 126) {
      if (b.length < 4) return null;
      length = (b[2] << 8) | b[3];
      at = 4;
    } else if (length === 127) {
      if (b.length < 10) return null;
      length = Number(new DataView(b.buffer, b.byteOffset).getBigUint64(2));
      at = 10;
    }
    if (b.length < at + length) return null;
    const frame = { opcode: b[0] & 0x0f, payload: b.slice(at, at + length) };
    this.#buffer = b.slice(at + length);
    return frame;
  }

  /** Closes the socket (once). */
  close(): void {
    try {
      this.conn.close();
    } catch (error) {
      if (!(error instanceof Deno.errors.BadResource)) throw error;
    }
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) at += await conn.write(bytes.subarray(at));
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

function indexOf(haystack: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

/** The room lines a page shows: `[name, text]`, in the order on the page. */
export function shownLines(page: Page, room: string): Promise<string[][]> {
  return page.evaluate<string[][]>(`
    [...document.querySelectorAll(".log")]
      .find((log) => log.getAttribute("aria-label") === ${JSON.stringify(`Messages in ${room}`)})
      .querySelectorAll("li.message, li.action")
      .values()
      .map((li) => [li.querySelector(".from").textContent, li.querySelector(".text").textContent])
      .toArray()`);
}
