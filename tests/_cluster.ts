/**
 * Cluster test helpers: nodes in this process (a ChatServer joined to a real
 * redis-server through a {@linkcode Cluster}), nodes as real `server.ts`
 * processes, and waiting for what clients see from other nodes.
 *
 * @module
 */

import { Cluster, type ClusterOptions } from "../lib/cluster/cluster.ts";
import type { ChatServerOptions } from "../lib/chat_server.ts";
import { DEADLINE_MS, startServer, TestClient, type TestServer, within } from "./_helpers.ts";
import type { RedisServer } from "./_redis.ts";

/** A node in this process: dispose it to shut it down (which leaves the cluster). */
export interface TestNode extends TestServer {
  readonly cluster: Cluster;
  readonly name: string;
}

/** Starts a relay server on 127.0.0.1:0 joined to the cluster in `redis` as node `name`. */
export async function startNode(
  redis: RedisServer,
  name: string,
  options: ClusterOptions & ChatServerOptions = {},
): Promise<TestNode> {
  const cluster = await Cluster.connect(redis.url, { node: name, ...options });
  const t = startServer({
    relay: true,
    ...options,
    bus: cluster,
    ids: cluster.ids,
    claims: cluster.claims,
    store: cluster.store,
  });
  return { ...t, cluster, name, [Symbol.asyncDispose]: () => t.server.shutdown() };
}

/** Connects a client to `port` and gives it a name; resolves once the name is granted. */
export async function named(port: number, name: string): Promise<TestClient> {
  const client = await TestClient.connect(port);
  await client.send(`/nick ${name}`);
  await client.lines.until(`* you are now ${name}`);
  client.name = name;
  return client;
}

/**
 * Reads `client`'s lines until each of `names` was announced as joined, or as
 * a new name (in any order); returns the lines read. A join shown on another node means that
 * node had started following the room: what is said from then on reaches it.
 */
export async function seeJoins(client: TestClient, names: string[]): Promise<string[]> {
  const waiting = new Set(names);
  const seen: string[] = [];
  while (waiting.size > 0) {
    const line = await client.lines.next(`joins of ${[...waiting].join(", ")}`);
    if (line === null) {
      throw new Error(`Input ended before joins of ${[...waiting]}:\n${seen.join("\n")}`);
    }
    seen.push(line);
    // A client that then took a name counts once the name is known too.
    const m = /^\* (\S+) joined$/.exec(line) ?? /^\* \S+ is now (\S+)$/.exec(line);
    if (m !== null) waiting.delete(m[1]);
  }
  return seen;
}

/**
 * Connects clients to the nodes in turn (`perNode` each), each once its node
 * reads #lobby's stream, and waits until each saw every later one join,
 * wherever it connected.
 */
export async function connectAll(nodes: TestNode[], perNode: number): Promise<TestClient[]> {
  const clients: TestClient[] = [];
  for (let i = 0; i < perNode; i++) {
    for (const node of nodes) {
      clients.push(await TestClient.connect(node.port));
      await node.cluster.following("#lobby");
    }
  }
  await Promise.all(
    clients.map((client, i) => seeJoins(client, clients.slice(i + 1).map((c) => c.name))),
  );
  return clients;
}

/** A `server.ts` process joined to a cluster, its stdout (the operator's log) read as it comes. */
export class NodeProcess implements AsyncDisposable {
  /** The child process. */
  readonly child: Deno.ChildProcess;
  /** Every stdout line so far. */
  readonly out: string[] = [];
  /** Every stderr line so far. */
  readonly err: string[] = [];
  /** The port it listens on. */
  port = 0;
  readonly #pumps: Promise<void>[];
  #waiters: { test: (line: string) => boolean; resolve: (line: string) => void }[] = [];

  private constructor(child: Deno.ChildProcess) {
    this.child = child;
    this.#pumps = [this.#pump(child.stdout, this.out), this.#pump(child.stderr, this.err)];
  }

  /**
   * Runs `deno run --allow-net [deno flags] server.ts --relay --port 0 [args]`
   * and waits for its listening line.
   */
  static async start(args: string[], denoFlags: string[] = []): Promise<NodeProcess> {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-net", ...denoFlags, "server.ts", "--relay", "--port", "0", ...args],
      cwd: new URL("..", import.meta.url),
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const node = new NodeProcess(child);
    try {
      const listening = await node.until(/^listening on /, "the listening line");
      node.port = Number(/:(\d+)$/.exec(listening)![1]);
    } catch (error) {
      await node[Symbol.asyncDispose]();
      throw new Error(`${(error as Error).message}\nstderr:\n${node.err.join("\n")}`);
    }
    return node;
  }

  /** Resolves with the first stdout line (already printed, or to come) that matches. */
  until(pattern: RegExp, what: string, ms = DEADLINE_MS): Promise<string> {
    const seen = this.out.find((line) => pattern.test(line));
    if (seen !== undefined) return Promise.resolve(seen);
    const { promise, resolve } = Promise.withResolvers<string>();
    const waiter = { test: (line: string) => pattern.test(line), resolve };
    this.#waiters.push(waiter);
    return within(promise, what, ms).finally(() => {
      this.#waiters = this.#waiters.filter((w) => w !== waiter);
    });
  }

  /** Sends a signal: SIGKILL (no goodbye), SIGSTOP and SIGCONT (a stall). */
  signal(signal: Deno.Signal): void {
    this.child.kill(signal);
  }

  /** Waits for the process to exit; its exit code. */
  async exit(): Promise<number> {
    const status = await within(this.child.status, "the node to exit");
    await Promise.all(this.#pumps);
    return status.code;
  }

  /** Kills the process if it still runs and waits for it. */
  async [Symbol.asyncDispose](): Promise<void> {
    try {
      this.child.kill("SIGCONT");
      this.child.kill("SIGKILL");
    } catch {
      // Exited already.
    }
    await this.child.status;
    await Promise.all(this.#pumps);
  }

  async #pump(stream: ReadableStream<Uint8Array>, lines: string[]): Promise<void> {
    let partial = "";
    for await (const text of stream.pipeThrough(new TextDecoderStream())) {
      const parts = (partial + text).split("\n");
      partial = parts.pop()!;
      for (const line of parts) {
        lines.push(line);
        if (lines !== this.out) continue;
        for (const waiter of this.#waiters) if (waiter.test(line)) waiter.resolve(line);
      }
    }
    if (partial !== "") lines.push(partial);
  }
}

/**
 * Checks the lines a client read: every `<name> name nK` line is from one of
 * `senders`, each sender's numbers come in order from 0 with none repeated or
 * missing, and exactly `count` came from each. Returns the number checked.
 */
export function checkOrdered(
  lines: string[],
  client: TestClient,
  senders: Set<string>,
  count: number,
): number {
  const next = new Map<string, number>();
  let checked = 0;
  for (const line of lines) {
    const m = /^<(\S+)> (\S+) n(\d+)$/.exec(line);
    if (m === null) continue;
    const [, from, said, n] = m;
    if (from !== said) throw new Error(`${client.name}: a line under another name: ${line}`);
    if (!senders.has(from)) throw new Error(`${client.name}: a line from ${from}, not a sender`);
    if (from === client.name) throw new Error(`${client.name} got its own line back`);
    const expected = next.get(from) ?? 0;
    if (Number(n) !== expected) {
      throw new Error(`${client.name}: from ${from}, n${n} where n${expected} was due`);
    }
    next.set(from, expected + 1);
    checked++;
  }
  for (const sender of senders) {
    if (sender !== client.name && (next.get(sender) ?? 0) !== count) {
      throw new Error(`${client.name} got ${next.get(sender) ?? 0} of ${count} lines of ${sender}`);
    }
  }
  return checked;
}
