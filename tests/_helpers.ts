/**
 * Test helpers: line-level test clients over real sockets, a log that records
 * what a server reports, and spawning the real programs.
 *
 * Nothing here sleeps: every wait is for an event (a line, an end of input, a
 * process exit), bounded by a deadline that fails the test instead of hanging it.
 *
 * @module
 */

import assert from "node:assert/strict";
import { connect } from "../lib/client/chat_client.ts";
import net from "node:net";
import { ChatServer, type ChatServerOptions } from "../lib/chat_server.ts";
import type { PeerInfo, ServerEvent, ServerLog } from "../lib/core/events.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** How long a test waits for something it expects before failing. */
export const DEADLINE_MS = 15_000;

/** Races `promise` against a deadline that rejects with `what` in the message. */
export async function within<T>(promise: Promise<T>, what: string, ms = DEADLINE_MS): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** Reads a byte stream as lines. */
export class LineReader {
  readonly #source: { read(p: Uint8Array): Promise<number | null> };
  /** Bytes read and not yet returned are `#buffer[#start..#end)`. */
  #buffer = new Uint8Array(64 * 1024);
  #start = 0;
  #end = 0;
  #ended = false;

  /** Lines from `source`. */
  constructor(source: { read(p: Uint8Array): Promise<number | null> }) {
    this.#source = source;
  }

  /** The next line without its `\n`, or null at end of input (a final partial line counts). */
  async next(what = "a line"): Promise<string | null> {
    while (true) {
      const nl = this.#buffer.subarray(this.#start, this.#end).indexOf(0x0a);
      if (nl >= 0) {
        const line = decoder.decode(this.#buffer.subarray(this.#start, this.#start + nl));
        this.#start += nl + 1;
        return line;
      }
      if (this.#ended) {
        if (this.#start === this.#end) return null;
        const rest = decoder.decode(this.#buffer.subarray(this.#start, this.#end));
        this.#start = this.#end;
        return rest;
      }
      // Make room: move the partial line to the front, or grow.
      if (this.#start > 0) {
        this.#buffer.copyWithin(0, this.#start, this.#end);
        this.#end -= this.#start;
        this.#start = 0;
      }
      if (this.#end === this.#buffer.length) {
        const grown = new Uint8Array(this.#buffer.length * 2);
        grown.set(this.#buffer);
        this.#buffer = grown;
      }
      const n = await within(this.#source.read(this.#buffer.subarray(this.#end)), what);
      if (n === null) this.#ended = true;
      else this.#end += n;
    }
  }

  /**
   * Reads lines until one matches; returns every line read, the match last.
   * Fails if input ends first.
   */
  async until(match: string | RegExp): Promise<string[]> {
    const seen: string[] = [];
    const test = (line: string) => typeof match === "string" ? line === match : match.test(line);
    while (true) {
      const line = await this.next(`a line matching ${match}`);
      if (line === null) {
        throw new Error(`Input ended before a line matching ${match}; got:\n${seen.join("\n")}`);
      }
      seen.push(line);
      if (test(line)) return seen;
    }
  }

  /** Reads to the end of input; returns the remaining lines. */
  async rest(): Promise<string[]> {
    const lines: string[] = [];
    for (let line; (line = await this.next("the end of input")) !== null;) lines.push(line);
    return lines;
  }
}

/** A test client: a real socket to the server, with line helpers. */
export class TestClient implements AsyncDisposable {
  /** The socket. */
  readonly conn: Deno.Conn;
  /** Lines from the server. */
  readonly lines: LineReader;
  /** The name the server gave in its welcome. */
  name = "";

  private constructor(conn: Deno.Conn) {
    this.conn = conn;
    this.lines = new LineReader(conn);
  }

  /**
   * Connects and reads the welcome: `* welcome, you are <name>`, then the line
   * saying where the client is (`* you are in #lobby…` in relay mode) or whom
   * it talks with (console mode).
   */
  static async connect(port: number, hostname = "127.0.0.1"): Promise<TestClient> {
    const client = new TestClient(await Deno.connect({ hostname, port }));
    const welcome = await client.lines.next("the welcome");
    const prefix = "* welcome, you are ";
    if (!welcome?.startsWith(prefix)) throw new Error(`Expected a welcome, got ${welcome}`);
    client.name = welcome.slice(prefix.length);
    await client.lines.next("the second welcome line");
    return client;
  }

  /** Connects without waiting for anything. */
  static async raw(port: number, hostname = "127.0.0.1"): Promise<TestClient> {
    return new TestClient(await Deno.connect({ hostname, port }));
  }

  /** Writes text as it is (add the `\n` yourself). */
  async write(text: string | Uint8Array): Promise<void> {
    const bytes = typeof text === "string" ? encoder.encode(text) : text;
    for (let at = 0; at < bytes.length;) at += await this.conn.write(bytes.subarray(at));
  }

  /** Sends lines, each followed by `\n`, in one write. */
  async send(...lines: string[]): Promise<void> {
    await this.write(lines.map((l) => `${l}\n`).join(""));
  }

  /** Closes the socket (once). */
  close(): void {
    try {
      this.conn.close();
    } catch {
      // Closed already.
    }
  }

  /** Closes the socket. */
  [Symbol.asyncDispose](): Promise<void> {
    this.close();
    return Promise.resolve();
  }
}

/** A {@linkcode ServerLog} that records events and message lines for assertions. */
export class MemoryLog implements ServerLog {
  /** Every event, in order. */
  readonly events: ServerEvent[] = [];
  /** Every message as `name: text`, in order. */
  readonly messages: string[] = [];
  /** The room of each message in `messages` (null without rooms). */
  readonly rooms: (string | null)[] = [];
  #waiters: { test: () => boolean; resolve: () => void }[] = [];

  /** Records an event. */
  event(event: ServerEvent): void {
    this.events.push(event);
    this.#check();
  }

  /** Records a message, and the room it was said in. */
  message(room: string | null, peer: PeerInfo, text: Uint8Array, start: number, end: number): void {
    this.messages.push(`${peer.name}: ${decoder.decode(text.subarray(start, end))}`);
    this.rooms.push(room);
    this.#check();
  }

  /** Always has room. */
  ready(): undefined {
    return undefined;
  }

  /** Waits until `test()` holds (it is checked after every record). */
  async until(test: () => boolean, what: string): Promise<void> {
    if (test()) return;
    const { promise, resolve } = Promise.withResolvers<void>();
    const waiter = { test, resolve };
    this.#waiters.push(waiter);
    try {
      await within(promise, what);
    } finally {
      this.#waiters = this.#waiters.filter((w) => w !== waiter);
    }
  }

  /** The events of one kind. */
  of<K extends ServerEvent["event"]>(kind: K): Extract<ServerEvent, { event: K }>[] {
    return this.events.filter((e) => e.event === kind) as Extract<ServerEvent, { event: K }>[];
  }

  #check(): void {
    for (const waiter of this.#waiters) if (waiter.test()) waiter.resolve();
  }
}

/** A server on 127.0.0.1 and an ephemeral port, with a memory log. */
export interface TestServer extends AsyncDisposable {
  readonly server: ChatServer;
  readonly log: MemoryLog;
  readonly port: number;
}

/**
 * Starts a server on `listener`, by default a new one on 127.0.0.1:0; dispose it
 * to shut it down.
 */
export function startServer(
  options: ChatServerOptions & { listener?: Deno.TcpListener } = {},
): TestServer {
  const listener = options.listener ?? Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const log = new MemoryLog();
  const server = new ChatServer(listener, { log, ...options });
  return {
    server,
    log,
    port: listener.addr.port,
    [Symbol.asyncDispose]: () => server.shutdown(),
  };
}

/** Connects `count` clients one after the other, each welcomed before the next connects. */
export async function connectMany(port: number, count: number): Promise<TestClient[]> {
  const clients: TestClient[] = [];
  for (let i = 0; i < count; i++) clients.push(await TestClient.connect(port));
  return clients;
}

/**
 * Connects, writes `data`, then resets the connection (RST, not FIN), as a
 * client that crashes or loses its network does.
 */
export async function sendAndReset(port: number, data: string): Promise<void> {
  const { promise, resolve, reject } = Promise.withResolvers<void>();
  const socket = net.connect(port, "127.0.0.1");
  socket.on("error", reject);
  socket.on("close", () => resolve());
  socket.on("connect", () => socket.write(data, () => socket.resetAndDestroy()));
  await within(promise, "the reset");
}

/** A process's memory in KiB: now (VmRSS) and at its peak (VmHWM). */
export async function processMemory(pid: number): Promise<{ rss: number; peak: number }> {
  // Deno 2.9 reads nothing under /proc without --allow-all; cat can.
  const { stdout } = await new Deno.Command("cat", { args: [`/proc/${pid}/status`] }).output();
  const text = new TextDecoder().decode(stdout);
  const kib = (key: string) => Number(new RegExp(`${key}:\\s+(\\d+) kB`).exec(text)![1]);
  return { rss: kib("VmRSS"), peak: kib("VmHWM") };
}

/** A spawned program (server.ts or client.ts) with piped stdio. */
export class Program implements AsyncDisposable {
  /** The child process. */
  readonly child: Deno.ChildProcess;
  /** Its stdout, as lines. */
  readonly stdout: LineReader;
  /** Its stderr, as lines. */
  readonly stderr: LineReader;
  readonly #stdin: WritableStreamDefaultWriter<Uint8Array>;
  #stdinClosed = false;

  /**
   * Runs `deno run --allow-net <script> ...args` (plus `extraPermissions`) from
   * the repository root. With `cleanEnv`, the program sees no environment
   * variables but HOME and PATH (no NO_COLOR, say).
   */
  constructor(
    script: string,
    args: string[],
    extraPermissions: string[] = [],
    options: { cleanEnv?: boolean } = {},
  ) {
    const root = new URL("..", import.meta.url);
    this.child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-net", ...extraPermissions, script, ...args],
      cwd: root,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
      ...(options.cleanEnv
        ? {
          clearEnv: true,
          env: { HOME: Deno.env.get("HOME") ?? "/", PATH: Deno.env.get("PATH") ?? "" },
        }
        : {}),
    }).spawn();
    this.stdout = new LineReader(streamSource(this.child.stdout));
    this.stderr = new LineReader(streamSource(this.child.stderr));
    this.#stdin = this.child.stdin.getWriter();
  }

  /** Writes to the program's stdin. */
  async write(text: string): Promise<void> {
    await this.#stdin.write(encoder.encode(text));
  }

  /** Closes the program's stdin (end of input). */
  async closeStdin(): Promise<void> {
    if (this.#stdinClosed) return;
    this.#stdinClosed = true;
    await this.#stdin.close().catch(() => {});
  }

  /** Waits for the program to exit; returns its exit code. */
  async exit(): Promise<number> {
    const status = await within(this.child.status, "the program to exit");
    return status.code;
  }

  /** Closes stdin, kills the program if it still runs, drains its output. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.closeStdin();
    try {
      this.child.kill("SIGKILL");
    } catch {
      // Exited already.
    }
    await this.child.status;
    await this.stdout.rest().catch(() => {});
    await this.stderr.rest().catch(() => {});
  }
}

/** A readable stream as a `read(p)` source. */
export function streamSource(stream: ReadableStream<Uint8Array>): {
  read(p: Uint8Array): Promise<number | null>;
} {
  const reader = stream.getReader();
  let pending: Uint8Array | null = null;
  return {
    async read(p) {
      if (pending === null) {
        const { done, value } = await reader.read();
        if (done) return null;
        pending = value;
      }
      const n = Math.min(p.length, pending.length);
      p.set(pending.subarray(0, n));
      pending = n < pending.length ? pending.subarray(n) : null;
      return n;
    },
  };
}

/**
 * A line client that connects from a loopback address of its choosing
 * (`127.0.0.2`, `127.0.0.3`, …: all of 127.0.0.0/8 is this machine), so that
 * tests can tell clients apart by address, as bans and throttling do. It goes
 * through `node:net`, which can bind the local end of a connection;
 * `Deno.connect` cannot.
 */
export class LoopbackClient implements AsyncDisposable {
  /** Lines from the server. */
  readonly lines: LineReader;
  readonly #socket: net.Socket;
  readonly #closed: Promise<void>;

  private constructor(socket: net.Socket) {
    this.#socket = socket;
    const chunks: Uint8Array[] = [];
    let ended = false;
    let wake: (() => void) | null = null;
    const notify = () => {
      wake?.();
      wake = null;
    };
    socket.on("data", (chunk: Uint8Array) => {
      chunks.push(new Uint8Array(chunk));
      notify();
    });
    // A reset counts as the end of input: tests read what came before it.
    socket.on("error", () => {});
    this.#closed = new Promise((resolve) =>
      socket.on("close", () => {
        ended = true;
        notify();
        resolve();
      })
    );
    socket.on("end", () => {
      ended = true;
      notify();
    });
    this.lines = new LineReader({
      async read(p) {
        while (chunks.length === 0) {
          if (ended) return null;
          await new Promise<void>((resolve) => wake = resolve);
        }
        const chunk = chunks[0];
        const n = Math.min(p.length, chunk.length);
        p.set(chunk.subarray(0, n));
        if (n === chunk.length) chunks.shift();
        else chunks[0] = chunk.subarray(n);
        return n;
      },
    });
  }

  /** Connects to 127.0.0.1:`port` from `from` (a 127.x.y.z address). */
  static async connect(port: number, from: string): Promise<LoopbackClient> {
    const socket = net.connect({ port, host: "127.0.0.1", localAddress: from });
    await within(
      new Promise<void>((resolve, reject) => {
        socket.once("connect", resolve);
        socket.once("error", reject);
      }),
      `a connection from ${from}`,
    );
    return new LoopbackClient(socket);
  }

  /** Sends lines, each followed by `\n`, in one write. */
  send(...lines: string[]): Promise<void> {
    return new Promise((resolve) =>
      this.#socket.write(lines.map((l) => `${l}\n`).join(""), () => resolve())
    );
  }

  /** Closes the connection and waits until it is closed. */
  async close(): Promise<void> {
    this.#socket.destroy();
    await this.#closed;
  }

  /** Closes the connection. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * Connects to 127.0.0.1:`port` over TLS as `localhost`, trusting the CA in the
 * PEM file `caFile`, says `/quit`, and returns the lines the server sent until
 * it ended the connection (the welcome first).
 */
export async function tlsVisit(port: number, caFile: string): Promise<string[]> {
  const caCerts = [await Deno.readTextFile(caFile)];
  const conn = await connect({ hostname: "localhost", port, tls: true, caCerts });
  const lines: string[] = [];
  try {
    const done = conn.readLines({
      line: (b, s, e) => lines.push(new TextDecoder().decode(b.subarray(s, e))),
      overlong: () => {},
      flush: () => {},
    });
    conn.send(new TextEncoder().encode("/quit\n"));
    assert.equal(await done, "eof");
  } finally {
    conn.close();
  }
  return lines;
}
