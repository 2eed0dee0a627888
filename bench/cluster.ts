// deno-lint-ignore-file no-console
/**
 * The cluster scenario: two charla nodes and a redis-server against one node
 * alone, on the same machine, with the same clients and load (split evenly
 * over the two nodes). Both setups run in the same invocation, one after the
 * other, and are printed side by side:
 *
 * - fan-out: N clients in one room, S of them sending L lines as fast as they
 *   can; every line checked at every receiver (lost, cut, duplicated,
 *   reordered). Deliveries/s, CPU of the nodes and of Redis.
 * - latency: one sender at a steady rate; what the receivers on the other
 *   node measure (a line that crosses nodes: sender -> node a -> Redis ->
 *   node b -> receiver), beside the same receivers on one node.
 *
 * With `--faults`, it also measures how long the cluster takes to notice a
 * node killed with `kill -9`, and to come back after Redis is restarted.
 *
 * ```sh
 * deno run --allow-net --allow-run --allow-read --allow-write --allow-env bench/cluster.ts
 * deno run ... bench/cluster.ts --quick --faults
 * deno task bench --only cluster
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import { BenchClient, closeAll, connectMany } from "./bench_client.ts";
import { allReceived, checkDeliveries, FanoutReceiver, FanoutRun, sendLines } from "./fanout.ts";
import { LatencyReceiver, percentile, sendPaced } from "./latency.ts";
import { closedFailures } from "./outcome.ts";
import { cpuInfo, processUsage, selfCpuMs, settle } from "./proc.ts";
import { ServerProcess } from "./server_process.ts";
import { RedisServer } from "../tests/_redis.ts";

/** One node alone, or two nodes and the Redis they share. */
interface Setup {
  readonly kind: "1 node" | "2 nodes + Redis";
  readonly nodes: ServerProcess[];
  readonly redis: RedisServer | null;
  stop(): Promise<void>;
}

async function startSetup(cluster: boolean): Promise<Setup> {
  if (!cluster) {
    const node = await ServerProcess.start("charla", { relay: true });
    return { kind: "1 node", nodes: [node], redis: null, stop: () => node[Symbol.asyncDispose]() };
  }
  const redis = await RedisServer.start();
  const nodes: ServerProcess[] = [];
  const stop = async () => {
    for (const node of nodes) await node[Symbol.asyncDispose]();
    await redis[Symbol.asyncDispose]();
  };
  try {
    for (const name of ["a", "b"]) {
      nodes.push(
        await ServerProcess.start("charla", {
          relay: true,
          charlaArgs: ["--cluster", redis.url, "--node", name],
        }),
      );
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return { kind: "2 nodes + Redis", nodes, redis, stop };
}

/** CPU milliseconds used so far by the nodes (together) and by Redis. */
async function cpu(setup: Setup): Promise<{ nodes: number; redis: number }> {
  let nodes = 0;
  for (const node of setup.nodes) nodes += (await node.usage()).cpuMs;
  const redis = setup.redis === null ? 0 : (await processUsage(setup.redis.pid)).cpuMs;
  return { nodes, redis };
}

/** Waits until the nodes and Redis are idle (joins told, memory freed). */
async function settleAll(setup: Setup): Promise<void> {
  for (const node of setup.nodes) await settle(node.pid);
  if (setup.redis !== null) await settle(setup.redis.pid);
}

/**
 * Connects `count` clients, alternating between the nodes (the first on the
 * first node): the same clients, split evenly.
 */
async function connectSplit(
  setup: Setup,
  count: number,
  options: { bufferSize?: number; timestamps?: boolean },
): Promise<BenchClient[]> {
  const groups: BenchClient[][] = [];
  const n = setup.nodes.length;
  for (let i = 0; i < n; i++) {
    groups.push(await connectMany(setup.nodes[i].port, Math.ceil((count - i) / n), options));
  }
  const clients: BenchClient[] = [];
  for (let i = 0; i < count; i++) clients.push(groups[i % n][Math.floor(i / n)]);
  return clients;
}

/** What one run of one setup measured. */
interface Result {
  figures: Record<string, number>;
  failures: string[];
}

/** Fan-out: N clients, S send L lines each; every line checked everywhere. */
async function fanout(
  setup: Setup,
  params: { clients: number; senders: number; lines: number },
): Promise<Result> {
  const { clients: n, senders: s, lines } = params;
  const clients = await connectSplit(setup, n, { bufferSize: 65_536 });
  let sending: Promise<void> = Promise.resolve();
  try {
    const run = new FanoutRun(clients.slice(0, s).map((c) => c.user), lines, n);
    const receivers = clients.map((client, i) => {
      const receiver = new FanoutReceiver(run, i < s ? i : -1);
      client.handler = receiver;
      return receiver;
    });
    await settleAll(setup);
    const before = await cpu(setup);
    const generator = selfCpuMs();
    const start = performance.now();
    let writeError: unknown = null;
    sending = Promise.all(clients.slice(0, s).map((client, i) => sendLines(client, i, lines)))
      .then(() => {}, (error) => void (writeError ??= error));
    const { end, stalled } = await allReceived(run, receivers, clients);
    const after = await cpu(setup);
    const wallMs = end - start;
    const deliveries = s * lines * (n - 1);
    const { failures } = checkDeliveries(receivers, clients, stalled, writeError);
    return {
      figures: {
        deliveries_per_s: deliveries / (wallMs / 1000),
        nodes_cpu_ns_per_delivery: (after.nodes - before.nodes) * 1e6 / deliveries,
        nodes_cpu_percent: (after.nodes - before.nodes) / wallMs * 100,
        redis_cpu_percent: (after.redis - before.redis) / wallMs * 100,
        generator_cpu_percent: (selfCpuMs() - generator) / wallMs * 100,
      },
      failures,
    };
  } finally {
    for (const node of setup.nodes) await node.stop();
    await closeAll(clients);
    await sending;
  }
}

/**
 * Latency: one client on the first node sends `rate` lines a second; the
 * receivers on the other node (all receivers, with one node) measure each line.
 */
async function latency(
  setup: Setup,
  params: { clients: number; rate: number; seconds: number },
): Promise<Result> {
  const total = Math.round(params.rate * params.seconds);
  const clients = await connectSplit(setup, params.clients, {
    bufferSize: 16_384,
    timestamps: true,
  });
  try {
    const n = setup.nodes.length;
    const sender = clients[0];
    // With two nodes, only the other node's clients: lines that cross nodes.
    const measured = clients.filter((_, i) => i > 0 && (n === 1 || i % n !== 0));
    const receivers = measured.map((client) => {
      const receiver = new LatencyReceiver(client, total);
      client.handler = receiver;
      return receiver;
    });
    for (const client of clients) {
      if (client !== sender && !measured.includes(client)) {
        client.handler = { line: () => true };
      }
    }
    await settleAll(setup);
    const before = await cpu(setup);
    const start = performance.now();
    await sendPaced(sender, total, params.rate, start);
    const sendEnd = performance.now();
    while (
      receivers.some((r) => r.count + r.bad < total) && performance.now() - sendEnd < 5_000
    ) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const after = await cpu(setup);
    const wallMs = performance.now() - start;
    const all = new Float64Array(receivers.reduce((t, r) => t + r.count, 0));
    let at = 0;
    for (const r of receivers) {
      all.set(r.samples.subarray(0, r.count), at);
      at += r.count;
    }
    all.sort();
    const failures: string[] = [];
    const expected = total * receivers.length;
    if (all.length < expected) failures.push(`${expected - all.length} lines lost`);
    const bad = receivers.reduce((t, r) => t + r.bad, 0);
    if (bad > 0) failures.push(`${bad} out-of-order lines`);
    failures.push(...closedFailures(clients));
    return {
      figures: {
        p50_ms: percentile(all, 0.5),
        p99_ms: percentile(all, 0.99),
        max_ms: all.length > 0 ? all[all.length - 1] : NaN,
        nodes_cpu_percent: (after.nodes - before.nodes) / wallMs * 100,
        redis_cpu_percent: (after.redis - before.redis) / wallMs * 100,
      },
      failures,
    };
  } finally {
    for (const node of setup.nodes) await node.stop();
    await closeAll(clients);
  }
}

/** Rows of the printed table: which figure of which test, how it reads. */
const ROWS: { test: "fanout" | "latency"; key: string; label: string; digits: number }[] = [
  { test: "fanout", key: "deliveries_per_s", label: "deliveries/s", digits: 0 },
  { test: "fanout", key: "nodes_cpu_ns_per_delivery", label: "nodes CPU ns/delivery", digits: 0 },
  { test: "fanout", key: "nodes_cpu_percent", label: "nodes CPU % of a core", digits: 0 },
  { test: "fanout", key: "redis_cpu_percent", label: "Redis CPU % of a core", digits: 0 },
  { test: "fanout", key: "generator_cpu_percent", label: "generator CPU % of a core", digits: 0 },
  { test: "latency", key: "p50_ms", label: "p50 ms", digits: 2 },
  { test: "latency", key: "p99_ms", label: "p99 ms", digits: 2 },
  { test: "latency", key: "max_ms", label: "max ms", digits: 2 },
  { test: "latency", key: "nodes_cpu_percent", label: "nodes CPU % of a core", digits: 0 },
  { test: "latency", key: "redis_cpu_percent", label: "Redis CPU % of a core", digits: 0 },
];

/** Measures how long a cluster of two takes to notice kill -9 and a Redis restart. */
async function faults(): Promise<string[]> {
  const lines: string[] = [];
  const redis = await RedisServer.start();
  const nodes: ServerProcess[] = [];
  try {
    for (const name of ["a", "b"]) {
      nodes.push(
        await ServerProcess.start("charla", {
          relay: true,
          charlaArgs: ["--cluster", redis.url, "--node", name],
        }),
      );
    }
    const [watcher] = await connectMany(nodes[0].port, 1, {});
    const [victim] = await connectMany(nodes[1].port, 1, {});
    // "* you are in #lobby…", then the victim's join (the first may have come before it).
    await waitFor(() => watcher.notices >= 2, 10_000);
    // Redis restarted: from the kill to the first line crossing nodes again.
    const text = new TextEncoder();
    await redis.kill();
    const down = performance.now();
    await redis.restart();
    const restarted = performance.now();
    let crossed = 0;
    watcher.handler = { line: () => (crossed++, true) };
    while (crossed === 0 && performance.now() - restarted < 15_000) {
      await victim.write(text.encode("ping\n"));
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    lines.push(
      `Redis killed, restarted ${((restarted - down) / 1000).toFixed(2)} s later: ` +
        `lines cross nodes again ${
          ((performance.now() - restarted) / 1000).toFixed(2)
        } s after the restart`,
    );
    // kill -9 of node b: until node a tells the watcher its people left.
    await settle(nodes[0].pid);
    const before = watcher.notices;
    nodes[1].stop();
    const killed = performance.now();
    await waitFor(() => watcher.notices > before, 15_000);
    lines.push(
      `kill -9 of a node: its people shown as left on the other after ${
        ((performance.now() - killed) / 1000).toFixed(2)
      } s (node timeout 3 s, checked every second)`,
    );
    await closeAll([watcher, victim]);
  } finally {
    for (const node of nodes) await node[Symbol.asyncDispose]();
    await redis[Symbol.asyncDispose]();
  }
  return lines;
}

async function waitFor(test: () => boolean, ms: number): Promise<void> {
  const start = performance.now();
  while (!test()) {
    if (performance.now() - start > ms) throw new Error(`Nothing after ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Options for {@linkcode runCluster}. */
export interface ClusterBenchOptions {
  /** Smaller sizes, for a smoke run. */
  quick?: boolean;
  /** Also measure kill -9 and a Redis restart. */
  faults?: boolean;
}

/**
 * Runs the cluster scenario and prints its table; returns how many runs failed
 * their checks. What `deno task bench --only cluster` calls.
 */
export async function runCluster(options: ClusterBenchOptions = {}): Promise<number> {
  const q = (full: number, small: number) => options.quick ? small : full;
  const fan = { clients: 50, senders: 10, lines: q(10_000, 1_000) };
  const lat = { clients: 50, rate: 1_000, seconds: q(5, 1) };
  const results = new Map<string, Result>();
  let failed = 0;
  for (const cluster of [false, true]) {
    for (const test of ["fanout", "latency"] as const) {
      const setup = await startSetup(cluster);
      let result: Result;
      try {
        result = test === "fanout" ? await fanout(setup, fan) : await latency(setup, lat);
      } catch (error) {
        result = { figures: {}, failures: [(error as Error).message] };
      } finally {
        await setup.stop();
      }
      results.set(`${setup.kind} ${test}`, result);
      const brief = Object.entries(result.figures)
        .map(([k, v]) => `${k} ${Number(v.toPrecision(4))}`).join(", ");
      console.error(`  cluster ${test} [${setup.kind}]: ${brief}`);
      if (result.failures.length > 0) {
        failed++;
        console.error(`  !!! FAILED ${setup.kind} ${test}: ${result.failures.join("; ")}`);
      }
    }
  }
  const labels = {
    fanout: `fan-out, ${fan.clients} clients, ${fan.senders} send ${
      fan.lines.toLocaleString("en")
    }`,
    latency:
      `latency, ${lat.clients} clients, 1 sender at ${lat.rate}/s (receivers on the other node)`,
  };
  const table = [["scenario", "figure", "1 node", "2 nodes + Redis", "2 nodes / 1"]];
  let last = "";
  for (const row of ROWS) {
    const one = results.get(`1 node ${row.test}`)?.figures[row.key];
    const two = results.get(`2 nodes + Redis ${row.test}`)?.figures[row.key];
    const format = (v: number | undefined) =>
      v === undefined || Number.isNaN(v)
        ? "-"
        : v.toLocaleString("en", { maximumFractionDigits: row.digits });
    const ratio = one !== undefined && two !== undefined && one > 0
      ? `${(two / one).toFixed(2)}x`
      : "";
    table.push([
      row.test === last ? "" : labels[row.test],
      row.label,
      format(one),
      format(two),
      ratio,
    ]);
    last = row.test;
  }
  const widths = table[0].map((_, i) => Math.max(...table.map((r) => r[i].length)));
  for (const [i, row] of table.entries()) {
    console.log(
      "| " + row.map((cell, c) => c >= 2 ? cell.padStart(widths[c]) : cell.padEnd(widths[c]))
        .join(" | ") +
        " |",
    );
    if (i === 0) {
      console.log(
        "| " + widths.map((w, c) => c >= 2 ? "-".repeat(w - 1) + ":" : "-".repeat(w)).join(" | ") +
          " |",
      );
    }
  }
  if (options.faults) {
    for (const line of await faults()) console.log(line);
  }
  return failed;
}

if (import.meta.main) {
  const flags = parseArgs({
    args: Deno.args,
    options: { quick: { type: "boolean" }, faults: { type: "boolean" } },
  }).values;
  const info = await cpuInfo();
  console.log(
    `charla cluster bench: deno ${Deno.version.deno}, ${info.model} x${info.cpus}` +
      (flags.quick ? " (quick)" : ""),
  );
  Deno.exit(await runCluster({ quick: flags.quick, faults: flags.faults }) > 0 ? 1 : 0);
}
