/**
 * A real `redis-server` for tests, on 127.0.0.1 and a free port, with nothing
 * saved to disk: start it, kill it, start it again on the same port, stop it.
 *
 * Readiness is Redis's own log line `Ready to accept connections`, never a
 * sleep; every wait is bounded by {@linkcode DEADLINE_MS} and fails the test
 * with the server's log when it runs out.
 *
 * @example
 * ```ts ignore
 * await using redis = await RedisServer.start({ args: ["--requirepass", "s3cret"] });
 * const client = await RedisClient.connect(redis.url, { password: "s3cret" });
 * await redis.kill();     // SIGKILL: clients see the connection drop
 * await redis.restart();  // the same port and arguments
 * ```
 *
 * @module
 */

import { DEADLINE_MS, within } from "./_helpers.ts";

/** Options for {@linkcode RedisServer.start}. */
export interface RedisServerOptions {
  /**
   * More redis-server arguments, as on its command line:
   * `["--requirepass", "s3cret"]`, `["--client-output-buffer-limit", "pubsub 64kb 0 0"]`.
   */
  args?: string[];
  /** Also listen for TLS on a second free port, with the certificates in tests/fixtures. */
  tls?: boolean;
}

const FIXTURES = new URL("./fixtures/", import.meta.url);

/** A port free right now: bound on 127.0.0.1 and released. */
function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  return port;
}

/** A running (or killed, to be restarted) redis-server. */
export class RedisServer implements AsyncDisposable {
  /** The plain TCP port on 127.0.0.1. */
  port: number;
  /** The TLS port, when started with `tls`; 0 otherwise. */
  tlsPort: number;
  /** The arguments it was started with after the fixed ones. */
  readonly args: readonly string[];
  /** Everything the server printed, stdout and stderr, line by line, across restarts. */
  readonly log: string[] = [];
  readonly #tls: boolean;
  /** Where Redis would write files; it writes none (`--save ""`, no AOF), but never in the repo. */
  readonly #dir: string;
  #child: Deno.ChildProcess | null = null;
  /** Readers of the child's output: they end when it exits. */
  #pumps: Promise<void>[] = [];
  /** Waiters for a log line, checked as lines arrive. */
  #waiters: { test: (line: string) => boolean; resolve: () => void }[] = [];

  private constructor(args: string[], tls: boolean, dir: string) {
    this.args = args;
    this.#tls = tls;
    this.#dir = dir;
    this.port = 0;
    this.tlsPort = 0;
  }

  /** Starts a server on free ports; resolves once it accepts connections. */
  static async start(options: RedisServerOptions = {}): Promise<RedisServer> {
    const dir = await Deno.makeTempDir({ prefix: "charla-redis-" });
    const server = new RedisServer(options.args ?? [], options.tls ?? false, dir);
    // A free port can be taken between our check and Redis's bind: try again then.
    for (let attempt = 1;; attempt++) {
      server.port = freePort();
      server.tlsPort = server.#tls ? freePort() : 0;
      try {
        await server.#spawn();
        return server;
      } catch (error) {
        const inUse = server.log.some((line) => line.includes("Address already in use"));
        if (!inUse || attempt === 5) {
          await Deno.remove(dir, { recursive: true });
          throw error;
        }
      }
    }
  }

  /** `redis://127.0.0.1:<port>`. */
  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** `rediss://127.0.0.1:<tlsPort>`. */
  get tlsUrl(): string {
    return `rediss://127.0.0.1:${this.tlsPort}`;
  }

  /** The PEM of the CA that signed the server's certificate, for `caCerts`. */
  static caCert(): string {
    return Deno.readTextFileSync(new URL("ca.pem", FIXTURES));
  }

  /** The process id of the running server (for CPU figures); throws when it is not running. */
  get pid(): number {
    if (this.#child === null) throw new Error("redis-server is not running");
    return this.#child.pid;
  }

  /** Whether the process runs. */
  get running(): boolean {
    return this.#child !== null;
  }

  /** Kills the server with `signal` (SIGKILL: no goodbye to clients) and waits for it to exit. */
  async kill(signal: Deno.Signal = "SIGKILL"): Promise<void> {
    const child = this.#child;
    if (child === null) return;
    this.#child = null;
    try {
      child.kill(signal);
    } catch {
      // Exited already.
    }
    await within(child.status, "redis-server to exit");
    await Promise.all(this.#pumps);
    this.#pumps = [];
  }

  /** Starts the server again on the same ports with the same arguments (after `kill`). */
  async restart(): Promise<void> {
    if (this.#child !== null) throw new Error("redis-server is still running; kill it first");
    await this.#spawn();
  }

  /** Resolves when a log line (printed from now on, or already) matches `pattern`. */
  async waitForLog(pattern: RegExp, what: string): Promise<void> {
    if (this.log.some((line) => pattern.test(line))) return;
    const { promise, resolve } = Promise.withResolvers<void>();
    const waiter = { test: (line: string) => pattern.test(line), resolve };
    this.#waiters.push(waiter);
    try {
      await within(promise, what);
    } finally {
      this.#waiters = this.#waiters.filter((w) => w !== waiter);
    }
  }

  /** Stops the server (SIGTERM: it saves nothing) and removes its directory. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.kill("SIGTERM");
    await Deno.remove(this.#dir, { recursive: true }).catch(() => {});
  }

  async #spawn(): Promise<void> {
    const args = [
      "--port",
      String(this.port),
      "--bind",
      "127.0.0.1",
      "--save",
      "",
      "--appendonly",
      "no",
      "--dir",
      this.#dir,
      "--daemonize",
      "no",
      "--logfile",
      "",
    ];
    if (this.#tls) {
      const file = (name: string) => new URL(name, FIXTURES).pathname;
      args.push(
        "--tls-port",
        String(this.tlsPort),
        "--tls-cert-file",
        file("server.pem"),
        "--tls-key-file",
        file("server-key.pem"),
        "--tls-ca-cert-file",
        file("ca.pem"),
        "--tls-auth-clients",
        "no",
      );
    }
    args.push(...this.args);
    const child = new Deno.Command("redis-server", {
      args,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#child = child;
    const from = this.log.length;
    this.#pumps = [this.#pump(child.stdout), this.#pump(child.stderr)];
    const ready = Promise.withResolvers<void>();
    const waiter = { test: (line: string) => /Ready to accept connections/.test(line), ...ready };
    this.#waiters.push(waiter);
    // If it exits before it is ready (a bad argument, a port in use), say why.
    const exited = child.status.then((status) => {
      throw new Error(
        `redis-server exited with code ${status.code} before it was ready:\n` +
          this.log.slice(from).join("\n"),
      );
    });
    exited.catch(() => {}); // once ready, exiting is the test's doing, not an error
    try {
      await within(Promise.race([ready.promise, exited]), "redis-server to be ready", DEADLINE_MS);
    } catch (error) {
      await this.kill();
      throw error;
    } finally {
      this.#waiters = this.#waiters.filter((w) => w !== waiter);
    }
  }

  /** Reads a child's output to its end into `log`, waking waiters line by line. */
  async #pump(stream: ReadableStream<Uint8Array>): Promise<void> {
    let partial = "";
    for await (const text of stream.pipeThrough(new TextDecoderStream())) {
      const lines = (partial + text).split("\n");
      partial = lines.pop()!;
      for (const line of lines) this.#line(line);
    }
    if (partial !== "") this.#line(partial);
  }

  #line(line: string): void {
    this.log.push(line);
    for (const waiter of this.#waiters) if (waiter.test(line)) waiter.resolve();
  }
}

/** Records values (events, messages) and waits until they satisfy a test. */
export class Recorder<T> {
  /** Everything recorded, in order. */
  readonly items: T[] = [];
  #waiters: { test: (items: T[]) => boolean; resolve: () => void }[] = [];

  /** Records `item`: a callback to hand to the code under test. */
  readonly add = (item: T): void => {
    this.items.push(item);
    for (const waiter of this.#waiters) if (waiter.test(this.items)) waiter.resolve();
  };

  /** Resolves when `test(items)` holds; fails the test after the deadline. */
  async until(test: (items: T[]) => boolean, what: string, ms = DEADLINE_MS): Promise<void> {
    if (test(this.items)) return;
    const { promise, resolve } = Promise.withResolvers<void>();
    const waiter = { test, resolve };
    this.#waiters.push(waiter);
    try {
      await within(promise, what, ms);
    } finally {
      this.#waiters = this.#waiters.filter((w) => w !== waiter);
    }
  }
}
