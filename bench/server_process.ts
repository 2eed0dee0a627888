/**
 * A server under test, run as a child process on 127.0.0.1 and an ephemeral port:
 * charla, or one of the peers it is compared with (`bench/peers/`): the C relay
 * (the practical limit), the Node relay (the expert in another runtime) and the
 * bare Deno relay (the runtime's floor).
 *
 * Every server is spawned through `sh -c 'exec "$@" >out 2>err'`: the shell
 * replaces itself with the server (so `child.pid` is the server's own pid, which
 * is checked through `/proc/<pid>/comm`), and the server writes its stdout straight
 * to a file as an operator's `> log` would. Piping stdout into the generator
 * instead would add the generator's own CPU to every logged line (1,000,000 of
 * them in the ingest scenario) and would stall the server whenever the generator
 * is slow to drain the pipe; discarding it ("null") would leave nothing to check.
 * The first stdout line (`listening on 127.0.0.1:<port>`) is read by polling the
 * file.
 *
 * @module
 */

import { commandOf, type ProcessUsage, processUsage } from "./proc.ts";

/** Which server implementation to run. */
export type ServerKind = "charla" | "c" | "node" | "deno" | "base";

/** Every server, in the order the tables show them. */
export const SERVER_KINDS: readonly ServerKind[] = ["charla", "c", "node", "deno", "base"];

/** What the tables call each server. */
export const SERVER_TITLES: Record<ServerKind, string> = {
  charla: "charla",
  c: "C",
  node: "Node",
  deno: "Deno",
  base: "before",
};

/**
 * How `deno task server` runs charla's server, from deno.json, so the bench
 * measures the server exactly as the project runs it (runtime flags included):
 * `["run", "--allow-net", …, "/abs/path/server.ts"]`.
 */
async function charlaCommand(root = new URL("../", import.meta.url)): Promise<string[]> {
  const config = JSON.parse(await Deno.readTextFile(new URL("deno.json", root)));
  const words = String(config.tasks.server).split(/\s+/);
  if (words[0] !== "deno") throw new Error(`Unexpected server task: ${config.tasks.server}`);
  return words.slice(1).map((w) => w.endsWith(".ts") ? new URL(w, root).pathname : w);
}
/** `deno run … server.ts` with `flags` before the script. */
function withFlags(command: string[], flags: string[]): string[] {
  return [...command.slice(0, -1), ...flags, command[command.length - 1]];
}

/** The expert Node relay. */
const NODE_RELAY = new URL("./peers/node_relay.mjs", import.meta.url).pathname;
/** The bare Deno relay. */
const DENO_RELAY = new URL("./peers/deno_relay.ts", import.meta.url).pathname;
/** Source of the C relay, built by {@linkcode buildCRelay}. */
const C_RELAY_SOURCE = new URL("./peers/c_relay.c", import.meta.url).pathname;

/**
 * How each server is run, for the report. The bare Deno relay runs as the README's
 * first command runs charla (`deno run --allow-net server.ts`), with no V8 flags:
 * it is the floor a user gets from the runtime as it comes.
 */
export async function serverCommands(): Promise<Record<ServerKind, string>> {
  return {
    charla: `deno ${(await charlaCommand()).join(" ").replace(/\S*\/server\.ts/, "server.ts")}`,
    c: "bench/results/c_relay (cc -O2 bench/peers/c_relay.c)",
    node: "node bench/peers/node_relay.mjs",
    deno: "deno run --allow-net bench/peers/deno_relay.ts",
    base: "the server task of an earlier revision (--base), from bench/results/base-<rev>/",
  };
}

/**
 * Writes the tree of revision `rev` (as `git archive` gives it) into a folder
 * under `dir`, for the `base` server: charla as it was, measured in the same
 * run as charla as it is. Returns the folder.
 */
export async function exportRevision(rev: string, dir: URL): Promise<URL> {
  const root = new URL("../", import.meta.url);
  const resolved = await new Deno.Command("git", {
    args: ["rev-parse", "--short", `${rev}^{commit}`],
    cwd: root,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!resolved.success) throw new Error(`git does not know the revision "${rev}"`);
  const short = new TextDecoder().decode(resolved.stdout).trim();
  const target = new URL(`base-${short}/`, dir);
  await Deno.remove(target, { recursive: true }).catch(() => {});
  await Deno.mkdir(target, { recursive: true });
  const archive = await new Deno.Command("sh", {
    args: ["-c", `git archive "${short}" | tar -x -C "${target.pathname}"`],
    cwd: root,
    stderr: "piped",
  }).output();
  if (!archive.success) {
    throw new Error(`git archive ${short} failed: ${new TextDecoder().decode(archive.stderr)}`);
  }
  return target;
}

/**
 * Builds the C relay with `cc -O2` into `dir` (git-ignored: the binary is never
 * committed). Returns its path, or null when there is no `cc`; throws with the
 * compiler's output when the build fails.
 */
export async function buildCRelay(dir: URL): Promise<string | null> {
  const path = new URL("c_relay", dir).pathname;
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command("cc", {
      args: ["-O2", "-Wall", "-o", path, C_RELAY_SOURCE],
      stdout: "piped",
      stderr: "piped",
    }).output();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
  if (!out.success) {
    const text = new TextDecoder().decode(out.stderr).trim();
    throw new Error(`cc could not build ${C_RELAY_SOURCE}:\n${text}`);
  }
  return path;
}

/** How the server is started. */
export interface ServerOptions {
  /** Relay mode (`--relay`): client lines go to the other clients. Else console mode. */
  relay: boolean;
  /**
   * Connection limit passed as `--max-clients`.
   * @default {20000}
   */
  maxClients?: number;
  /**
   * More arguments for charla's server.ts only (`--charla-args`), to measure it
   * with settings other than its defaults.
   * @default {[]}
   */
  charlaArgs?: string[];
  /**
   * More `deno run` flags for charla (before the script): the permissions
   * some of its arguments need, such as `--allow-read`/`--allow-write` for `--db`.
   * @default {[]}
   */
  charlaFlags?: string[];
  /**
   * Run charla as the README's first command does (`deno run --allow-net
   * server.ts`): without the server task's V8 flags. The idle memory target is
   * measured so, since that is what a user gets who typed no flag.
   * @default {false}
   */
  noV8Flags?: boolean;
  /** Path of the C relay's binary (from {@linkcode buildCRelay}); needed for kind "c". */
  cRelay?: string;
  /** The earlier revision's tree (from {@linkcode exportRevision}); needed for kind "base". */
  base?: URL;
}

/** The command line of a server, and the name its process runs under (`/proc/<pid>/comm`). */
async function commandFor(
  kind: ServerKind,
  args: string[],
  options: ServerOptions,
): Promise<{ command: string[]; comm: string }> {
  switch (kind) {
    case "charla":
      // Every bench client comes from 127.0.0.1: charla's per-address limit
      // (16 by default) would refuse all but the first few. (A --base
      // revision from before the limit would not know the flag.)
      return {
        command: [
          Deno.execPath(),
          ...withFlags(
            (await charlaCommand()).filter((w) =>
              !(options.noV8Flags && w.startsWith("--v8-flags"))
            ),
            options.charlaFlags ?? [],
          ),
          ...args,
          "--max-per-address",
          "0",
          ...options.charlaArgs ?? [],
        ],
        comm: "deno",
      };
    case "node":
      return { command: ["node", NODE_RELAY, ...args], comm: "node" };
    case "deno":
      return {
        command: [Deno.execPath(), "run", "--allow-net", DENO_RELAY, ...args],
        comm: "deno",
      };
    case "c":
      if (options.cRelay === undefined) throw new TypeError("The C relay has not been built");
      return { command: [options.cRelay, ...args], comm: "c_relay" };
    case "base":
      if (options.base === undefined) throw new TypeError("No --base revision was exported");
      return {
        command: [
          Deno.execPath(),
          ...await charlaCommand(options.base),
          ...args,
          // As for charla, when the revision has the per-address limit.
          ...(await Deno.readTextFile(new URL("server.ts", options.base)))
              .includes('"max-per-address"')
            ? ["--max-per-address", "0"]
            : [],
        ],
        comm: "deno",
      };
  }
}

/** A running server; dispose of it with `await using` (stops it and removes its files). */
export class ServerProcess implements AsyncDisposable {
  /** Which implementation this is. */
  readonly kind: ServerKind;
  /** The server's own pid (not a wrapper's). */
  readonly pid: number;
  /** The port it listens on, from its first stdout line. */
  readonly port: number;
  /** The file the server's stdout goes to. */
  readonly stdoutPath: string;
  /** The file the server's stderr goes to. */
  readonly stderrPath: string;
  /** Temporary directory holding both files; removed on disposal. */
  readonly #dir: string;
  /** The child process (the shell that became the server). */
  readonly #child: Deno.ChildProcess;
  /** Writer of the server's stdin, the operator console. */
  readonly #stdin: WritableStreamDefaultWriter<Uint8Array>;
  /** Set by the first stop(), so later calls wait for the same one. */
  #stopped: Promise<void> | null = null;
  /** The exit status once the process has ended on its own (not by our kill). */
  #exit: Deno.CommandStatus | null = null;

  private constructor(
    kind: ServerKind,
    child: Deno.ChildProcess,
    port: number,
    dir: string,
  ) {
    this.kind = kind;
    this.#child = child;
    this.pid = child.pid;
    this.port = port;
    this.#dir = dir;
    this.stdoutPath = `${dir}/stdout.log`;
    this.stderrPath = `${dir}/stderr.log`;
    this.#stdin = child.stdin.getWriter();
    child.status.then((status) => {
      if (this.#stopped === null) this.#exit = status;
    });
  }

  /** How the server ended if it ended by itself (a crash, an exit), else null. */
  get exitedEarly(): Deno.CommandStatus | null {
    return this.#exit;
  }

  /** Starts a server and waits until it prints `listening on 127.0.0.1:<port>`. */
  static async start(kind: ServerKind, options: ServerOptions): Promise<ServerProcess> {
    const args = ["--host", "127.0.0.1", "--port", "0"];
    args.push("--max-clients", String(options.maxClients ?? 20_000));
    if (options.relay) args.push("--relay");
    const { command, comm } = await commandFor(kind, args, options);
    const dir = await Deno.makeTempDir({ prefix: `charla-bench-${kind}-` });
    const child = new Deno.Command("sh", {
      args: ["-c", 'exec "$@" >"$0/stdout.log" 2>"$0/stderr.log"', dir, ...command],
      stdin: "piped",
      stdout: "null",
      stderr: "null",
    }).spawn();
    let exited = false;
    child.status.then(() => exited = true);
    const stdoutPath = `${dir}/stdout.log`;
    const deadline = performance.now() + 20_000;
    let port = 0;
    while (port === 0) {
      const first = await readFirstLine(stdoutPath);
      const match = first === null ? null : /^listening on 127\.0\.0\.1:(\d+)$/.exec(first);
      if (match !== null) {
        port = Number(match[1]);
        break;
      }
      if (first !== null || exited || performance.now() > deadline) {
        const why = first !== null
          ? `its first line was "${first}"`
          : exited
          ? "it exited"
          : "it printed nothing in 20 s";
        const stderr = await tail(`${dir}/stderr.log`);
        kill(child);
        await child.status;
        await child.stdin.close().catch(() => {}); // fails once the pipe's reader is gone
        await Deno.remove(dir, { recursive: true });
        throw new Error(`Cannot start the ${kind} server: ${why}${stderr ? `\n${stderr}` : ""}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const server = new ServerProcess(kind, child, port, dir);
    // Memory and CPU are read from this pid: make sure the shell has become the server.
    const running = await commandOf(server.pid);
    if (running !== comm) {
      await server[Symbol.asyncDispose]();
      throw new Error(`Server pid ${server.pid} runs "${running}", not "${comm}"`);
    }
    return server;
  }

  /** Current resident memory and CPU time of the server. */
  usage(): Promise<ProcessUsage> {
    return processUsage(this.pid);
  }

  /** Types one line on the server's operator console (its stdin). */
  async say(text: string): Promise<void> {
    await this.#stdin.write(new TextEncoder().encode(text + "\n"));
  }

  /** The last lines the server wrote to stderr, for error reports. */
  stderrTail(): Promise<string> {
    return tail(this.stderrPath);
  }

  /** The last lines of the server's log (its stdout), for error reports. */
  stdoutTail(): Promise<string> {
    return tail(this.stdoutPath);
  }

  /**
   * Kills the server (its files stay until disposal). SIGKILL, not a graceful shutdown: the
   * bench does not measure shutdown, and with 15,000 clients a graceful one would
   * send each of them a goodbye and wait for it to drain. Safe to call twice.
   */
  stop(): Promise<void> {
    this.#stopped ??= this.#stop();
    return this.#stopped;
  }

  async #stop(): Promise<void> {
    kill(this.#child);
    await this.#child.status;
    await this.#stdin.close().catch(() => {}); // fails once the pipe's reader is gone
  }

  /** Stops the server and removes its output files. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
    await Deno.remove(this.#dir, { recursive: true });
  }
}

/** Sends SIGKILL, unless the process has already exited. */
function kill(child: Deno.ChildProcess): void {
  try {
    child.kill("SIGKILL");
  } catch (error) {
    if (!(error instanceof TypeError)) throw error; // TypeError: it has already exited
  }
}

/** The first line of a file, or null while it has no complete line yet. */
async function readFirstLine(path: string): Promise<string | null> {
  let text: string;
  try {
    using file = await Deno.open(path);
    const buf = new Uint8Array(256);
    const n = await file.read(buf);
    text = n === null ? "" : new TextDecoder().decode(buf.subarray(0, n));
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
  const nl = text.indexOf("\n");
  return nl < 0 ? null : text.slice(0, nl);
}

/** The last lines (at most 20, from the last 4 KiB) of a text file, or "" when it is missing. */
async function tail(path: string): Promise<string> {
  try {
    using file = await Deno.open(path);
    const size = (await file.stat()).size;
    await file.seek(Math.max(0, size - 4096), Deno.SeekMode.Start);
    const buf = new Uint8Array(4096);
    let length = 0;
    for (let n; length < buf.length && (n = await file.read(buf.subarray(length))) !== null;) {
      length += n;
    }
    const text = new TextDecoder().decode(buf.subarray(0, length)).trimEnd();
    return text.split("\n").slice(size > 4096 ? 1 : 0).slice(-20).join("\n");
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return "";
    throw error;
  }
}

/** Whether `node` can be run, and its version (null when it is not on PATH). */
export async function nodeVersion(): Promise<string | null> {
  try {
    const out = await new Deno.Command("node", { args: ["--version"], stderr: "null" }).output();
    return out.success ? new TextDecoder().decode(out.stdout).trim() : null;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
}
