// deno-lint-ignore-file no-console
/**
 * `deno task bench`: load generator for charla, compared in the same run with
 * three peers (`bench/peers/`), so that every figure has its ratio to the
 * practical limit, to the runtime's floor and to Node:
 *
 * - C: a minimal single-threaded epoll relay (`c_relay.c`, built with `cc -O2`
 *   into `bench/results/`; skipped with a note when there is no `cc`);
 * - Node: the expert Node relay (`node_relay.mjs`; skipped when there is no `node`);
 * - Deno: the bare Deno relay (`deno_relay.ts`), `Deno.Conn` reads and writes and
 *   nothing more, run with no V8 flags as `deno run --allow-net server.ts` is.
 *
 * Each run starts a fresh server on 127.0.0.1 and an ephemeral port and measures
 * it; the table shows every server's figure side by side with charla's ratio to
 * each (for the fanout, rooms, ingest, latency and broadcast scenarios, the median of three
 * runs), and every run is appended as one JSON line to `bench/results/<date>.jsonl`.
 *
 * ```sh
 * deno task bench                        # everything, every server (about five minutes)
 * deno task bench --quick                # smaller sizes, for a smoke run
 * deno task bench --only fanout,latency  # some scenarios
 * deno task bench --server charla,c      # some servers (charla, c, node, deno)
 * deno task bench --charla-args="--send-queue 64m"  # charla with other settings
 * deno task bench --only fanout,fanout-db --server charla  # what keeping history (--db) costs
 * ```
 *
 * `fanout-ports` runs them with the IRC and web ports open (`--irc 0 --web 0`), unused.
 * `fanout-db` runs the fanout sizes against charla only, each run with a fresh
 * SQLite file (`--db`), to compare with the `fanout` rows of the same run. The
 * three fanout variants of one size run interleaved (plain, `--db`, ports, then
 * again), so their ratios compare runs made together.
 *
 * Exit code 1 when any run failed its checks (lost, cut, duplicated or reordered
 * lines, lines in the wrong room, dropped clients, a server that would not start or
 * build); 2 on bad flags.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { runBroadcast } from "./broadcast.ts";
import { runCluster } from "./cluster.ts";
import { type DbSetting, withDb } from "./db_fanout.ts";
import { runFanout } from "./fanout.ts";
import { runIdle } from "./idle.ts";
import { runIngest } from "./ingest.ts";
import { EARLY_LINES, runLatency } from "./latency.ts";
import { failedOutcome, type Outcome } from "./outcome.ts";
import { cpuInfo } from "./proc.ts";
import { type Metric, printCpuTable, printTable, type RunRecord } from "./report.ts";
import { runRooms } from "./rooms.ts";
import {
  buildCRelay,
  exportRevision,
  nodeVersion,
  SERVER_KINDS,
  serverCommands,
  type ServerKind,
  type ServerOptions,
  ServerProcess,
} from "./server_process.ts";
import { runStalled, sendQueueBound } from "./stalled.ts";
import { runWebFanout } from "./web.ts";

/** One measured configuration, run `runs` times per server. */
interface Scenario {
  /** The name `--only` selects. */
  name: string;
  /** What the table shows. */
  label: string;
  /** Sizes, as recorded in the results file. */
  params: Record<string, number>;
  /** Relay mode or console mode. */
  relay: boolean;
  /**
   * Runs per server, each on a fresh server; the table shows the median run (by
   * the first metric). Scenarios measured over well under a second vary by a
   * quarter from run to run on a small shared machine, and a median of three
   * steadies the ratio.
   */
  runs: number;
  /** The figures the table compares. */
  metrics: Metric[];
  /** The figure that picks the median run, when not the first metric's. */
  medianBy?: string;
  /** Runs against a started server; stops it when done. */
  run(server: ServerProcess): Promise<Outcome>;
  /** The servers it can run on, when not all (the peers speak no WebSocket). */
  servers?: ServerKind[];
  /** Settings charla runs with, made afresh for each run (a new database). */
  charla?: () => Promise<DbSetting>;
  /** More server.ts arguments it needs (`--web 0`). */
  charlaArgs?: string[];
  /** Runs charla without the server task's V8 flags, as the README's first command does. */
  noV8Flags?: boolean;
  /**
   * Scenarios with the same group run interleaved, run 1 of each, then run 2
   * of each: the fanout at one size plain, with `--db` and with more ports, so
   * that their ratios compare runs made at the same time, not minutes apart.
   */
  group?: string;
}

/** Scenario names, in the order they run. */
const NAMES = [
  "fanout",
  "fanout-db",
  "fanout-ports",
  "web",
  "rooms",
  "latency",
  "idle",
  "broadcast",
  "ingest",
  "stalled",
  "cluster",
];

/**
 * The scenarios at full size, or at `--quick` size. Fanout sizes give each run
 * about 2.5 M deliveries, enough for a few seconds of steady state at every N
 * (N=50 is the issue's headline "50 clients x 1,000 lines"). `charlaArgs` tell the
 * stalled scenario which send-queue bound charla runs with.
 */
function scenarios(quick: boolean, charlaArgs: string[]): Scenario[] {
  const q = (full: number, small: number) => quick ? small : full;
  const list: Scenario[] = [];
  const fanouts = [
    { clients: 10, senders: 10, lines: q(25_000, 2_500) },
    { clients: 50, senders: 50, lines: q(1_000, 100) },
    { clients: 100, senders: 25, lines: q(1_000, 100) },
    { clients: 1_000, senders: 10, lines: q(250, 25) },
  ];
  /** A fanout scenario at each size: `name` and `tag` (in the label) say which variant. */
  const fanoutAtEachSize = (name: string, tag: string, variant: Partial<Scenario> = {}) => {
    for (const params of fanouts) {
      list.push({
        name,
        label: `fanout ${tag}N=${params.clients} S=${params.senders} L=${
          params.lines.toLocaleString("en")
        }`,
        params: { ...params, deliveries: params.senders * params.lines * (params.clients - 1) },
        relay: true,
        runs: q(3, 1),
        metrics: [
          { key: "deliveries_per_s", label: "deliveries/s", better: "higher" },
          { key: "server_cpu_ns_per_delivery", label: "server CPU ns/delivery", better: "lower" },
        ],
        run: (server) => runFanout(server, params),
        group: `fanout N=${params.clients}`,
        ...variant,
      });
    }
  };
  fanoutAtEachSize("fanout", "");
  // The same with every line kept in SQLite (--db, a fresh file each run): what
  // the store costs the relay. Charla only; compare with the fanout rows above.
  fanoutAtEachSize("fanout-db", "--db ", { servers: ["charla"], charla: withDb });
  // The same with the IRC and web ports open too (their clients elsewhere): what
  // having those transports costs the line clients' relay. Charla only.
  fanoutAtEachSize("fanout-ports", "+irc +web ", {
    servers: ["charla"],
    charlaArgs: ["--irc", "0", "--web", "0"],
  });
  // The fanout of 1,000 above, to browsers: 1,000 WebSocket clients of the web
  // port as the page connects (events in JSON arrays), 10 of them sending JSON
  // frames. charla only: the peers speak no WebSocket; the TCP figure to
  // compare it with is the fanout N=1000 row of the same run.
  const web = { clients: 1_000, senders: 10, lines: q(250, 25) };
  list.push({
    name: "web",
    label: `web fanout N=${web.clients} S=${web.senders} L=${web.lines} (WebSocket)`,
    params: { ...web, deliveries: web.senders * web.lines * (web.clients - 1) },
    relay: true,
    runs: q(3, 1),
    metrics: [
      { key: "deliveries_per_s", label: "deliveries/s", better: "higher" },
      { key: "server_cpu_ns_per_delivery", label: "server CPU ns/delivery", better: "lower" },
    ],
    run: (server) => runWebFanout(server, { ...web, batch: true }),
    servers: ["charla"],
    charlaArgs: ["--web", "0"],
  });
  // 10 rooms of 100, 5 senders each: 2.5 M deliveries, as in the fanout runs.
  const rooms = { rooms: 10, perRoom: 100, senders: 5, lines: q(500, 50) };
  list.push({
    name: "rooms",
    label: `rooms: ${rooms.rooms} rooms x ${rooms.perRoom} clients, S=${rooms.senders} L=${
      rooms.lines.toLocaleString("en")
    }`,
    params: {
      ...rooms,
      deliveries: rooms.rooms * rooms.senders * rooms.lines * (rooms.perRoom - 1),
    },
    relay: true,
    runs: q(3, 1),
    metrics: [
      { key: "deliveries_per_s", label: "deliveries/s", better: "higher" },
      { key: "server_cpu_ns_per_delivery", label: "server CPU ns/delivery", better: "lower" },
    ],
    run: (server) => runRooms(server, rooms),
  });
  const latency = { clients: 100, rate: 1_000, seconds: q(5, 1) };
  list.push({
    name: "latency",
    label: `latency ${latency.clients} clients, ${latency.rate}/s for ${latency.seconds} s`,
    params: latency,
    relay: true,
    // A p99 of 5,000 lines moves with one hiccup of a shared machine: the median of three.
    runs: q(3, 1),
    medianBy: "p99_ms",
    metrics: [
      ...["p50", "p90", "p99"].map((p) => ({
        key: `${p}_ms`,
        label: `${p} ms`,
        better: "lower" as const,
      })),
      // The same p99 over the first EARLY_LINES lines and over the rest.
      { key: "p99_early_ms", label: `p99 ms, lines 1-${EARLY_LINES}`, better: "lower" },
      { key: "p99_after_ms", label: `p99 ms, lines ${EARLY_LINES + 1}-`, better: "lower" },
      { key: "max_ms", label: "max ms", better: "lower" },
    ],
    run: (server) => runLatency(server, latency),
  });
  for (const connections of [q(10_000, 1_000), q(15_000, 1_500)]) {
    const idle = { connections };
    list.push({
      name: "idle",
      label: `idle ${idle.connections.toLocaleString("en")} connections (no V8 flag)`,
      params: idle,
      relay: true,
      noV8Flags: true,
      runs: 1,
      metrics: [
        { key: "kib_per_connection", label: "KiB/connection", better: "lower" },
        { key: "held", label: "held", better: "higher" },
        { key: "connections_per_s", label: "connects/s", better: "higher" },
      ],
      run: (server) => runIdle(server, idle),
    });
  }
  const broadcast = { clients: q(10_000, 1_000), repeats: q(5, 3) };
  list.push({
    name: "broadcast",
    label: `broadcast to ${broadcast.clients.toLocaleString("en")} x${broadcast.repeats}`,
    params: broadcast,
    relay: true,
    runs: q(3, 1),
    metrics: [
      { key: "median_ms", label: "median ms", better: "lower" },
      { key: "max_ms", label: "max ms", better: "lower" },
    ],
    run: (server) => runBroadcast(server, broadcast),
  });
  const ingest = { lines: q(1_000_000, 100_000) };
  list.push({
    name: "ingest",
    label: `ingest ${ingest.lines.toLocaleString("en")} lines (console)`,
    params: ingest,
    relay: false,
    runs: q(3, 1),
    metrics: [
      { key: "lines_per_s", label: "lines/s", better: "higher" },
      { key: "server_cpu_ns_per_line", label: "server CPU ns/line", better: "lower" },
    ],
    run: (server) => runIngest(server, ingest),
  });
  // 20 x 10,000 lines of 72 bytes as relayed: 14 MiB addressed to the stalled client,
  // far more than charla's 1 MiB bound plus the loopback socket buffers (3.8 MiB here).
  // Quick runs send half, not a tenth: 1.4 MiB would fit in those buffers, and the
  // server would rightly never find the client behind.
  const stalled = { senders: 20, lines: q(10_000, 5_000) };
  const sendQueue = sendQueueBound(charlaArgs);
  list.push({
    name: "stalled",
    label: "stalled: 20 full speed + 1 not reading",
    params: {
      ...stalled,
      send_queue: sendQueue,
      deliveries: stalled.senders * stalled.lines * (stalled.senders - 1),
    },
    relay: true,
    runs: 1,
    metrics: [
      { key: "peak_rss_growth_mib", label: "peak RSS growth MiB", better: "lower" },
      { key: "deliveries_per_s", label: "deliveries/s", better: "higher" },
      { key: "stalled_dropped", label: "stalled client dropped", better: "higher" },
    ],
    run: (server) => runStalled(server, { ...stalled, sendQueue }),
  });
  return list;
}

const USAGE = `Usage: deno task bench [--quick] [--only <scenario,...>] [--server <server,...>]

Scenarios: ${NAMES.join(", ")}
Servers: charla, c, node, deno (and base, with --base)
  --quick    smaller sizes, for a smoke run
  --only     run only these scenarios (comma-separated)
  --server   which servers to measure (comma-separated; default: every one available)
  --charla-args="<args>"  extra server.ts arguments (e.g. "--send-queue 16m"); the
             default run uses charla's defaults, and records these in the results
  --base <rev>  also run charla as it was at a git revision (its own server task),
             as the server "base", shown as "before": a change measured in one run`;

/** Runs the bench; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  let flags;
  try {
    flags = parseArgs({
      args,
      options: {
        only: { type: "string" },
        quick: { type: "boolean", default: false },
        server: { type: "string", default: "charla,c,node,deno" },
        "charla-args": { type: "string", default: "" },
        base: { type: "string" },
        help: { type: "boolean", short: "h", default: false },
      },
    }).values;
  } catch (error) {
    console.error(`${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  if (flags.help) {
    console.log(USAGE);
    return 0;
  }
  const only = flags.only?.split(",").map((name) => name.trim()).filter(Boolean) ?? NAMES;
  const unknown = only.filter((name) => !NAMES.includes(name));
  // "both" was the only way to ask for two servers before the C and Deno peers.
  const wanted = flags.server === "both" ? ["charla", "node"] : flags.server.split(",")
    .map((name) => name.trim().toLowerCase()).filter(Boolean);
  const badServer = wanted.find((name) => !(SERVER_KINDS as string[]).includes(name));
  if (unknown.length > 0 || badServer !== undefined || wanted.length === 0) {
    console.error(
      `${
        unknown.length > 0 ? `Unknown scenario "${unknown[0]}"` : `Unknown server "${badServer}"`
      }\n${USAGE}`,
    );
    return 2;
  }
  // The tables always show the servers in the same order, whatever order was asked.
  const kinds = SERVER_KINDS.filter((kind) =>
    wanted.includes(kind) || (kind === "base" && flags.base !== undefined)
  );

  const resultsDir = new URL("./results/", import.meta.url);
  await Deno.mkdir(resultsDir, { recursive: true });
  const node = await nodeVersion();
  if (node === null && kinds.includes("node")) {
    console.log("note: `node` is not on PATH: the Node relay comparison is skipped");
    kinds.splice(kinds.indexOf("node"), 1);
  }
  let cRelay: string | undefined;
  let buildFailed = false;
  if (kinds.includes("c")) {
    let built: string | null = null;
    try {
      built = await buildCRelay(resultsDir);
      if (built === null) {
        console.log("note: `cc` is not on PATH: the C relay comparison is skipped");
      }
    } catch (error) {
      console.log(`!!! ${(error as Error).message}\n!!! the C relay comparison is skipped`);
      buildFailed = true;
    }
    if (built === null) kinds.splice(kinds.indexOf("c"), 1);
    else cRelay = built;
  }
  let base: URL | undefined;
  if (flags.base !== undefined) {
    try {
      base = await exportRevision(flags.base, resultsDir);
    } catch (error) {
      console.error(`${(error as Error).message}\n${USAGE}`);
      return 2;
    }
  }
  if (kinds.length === 0) return 2;

  const charlaArgs = flags["charla-args"].split(/\s+/).filter(Boolean);
  const cpu = await cpuInfo();
  const date = new Date();
  const resultsFile = new URL(`${date.toISOString().slice(0, 10)}.jsonl`, resultsDir);
  console.log(
    `charla bench: deno ${Deno.version.deno}, node ${node ?? "-"}, ${cpu.model} x${cpu.cpus}` +
      (flags.quick ? " (quick)" : "") +
      (charlaArgs.length > 0 ? `, charla with ${charlaArgs.join(" ")}` : ""),
  );
  const commands = await serverCommands();
  for (const kind of kinds) console.log(`  ${kind.padEnd(6)}  ${commands[kind]}`);

  const selected = scenarios(flags.quick, charlaArgs).filter((scenario) =>
    only.includes(scenario.name)
  );
  const records: RunRecord[] = []; // per scenario and server: the median run
  const allRuns: RunRecord[] = [];
  const quick = flags.quick;
  // Scenarios of one group run together; the others each on their own.
  const groups = new Map<string, Scenario[]>();
  for (const scenario of selected) {
    const key = scenario.group ?? scenario.name + scenario.label;
    groups.set(key, [...groups.get(key) ?? [], scenario]);
  }
  for (const group of groups.values()) {
    // Runs interleaved (charla, C, Node, Deno, then again): a machine that slows
    // down for a while slows every server's run alike, not one server's three.
    const runsOf = new Map<Scenario, Map<ServerKind, RunRecord[]>>();
    for (const scenario of group) runsOf.set(scenario, new Map());
    const most = Math.max(...group.map((scenario) => scenario.runs));
    for (let run = 1; run <= most; run++) {
      for (const scenario of group) {
        if (run > scenario.runs) continue;
        for (const kind of kinds) {
          if (scenario.servers !== undefined && !scenario.servers.includes(kind)) continue;
          const record = await measure(scenario, kind, run);
          const byKind = runsOf.get(scenario)!;
          byKind.set(kind, [...byKind.get(kind) ?? [], record]);
          allRuns.push(record);
        }
      }
    }
    for (const [scenario, byKind] of runsOf) {
      for (const runs of byKind.values()) {
        records.push(medianRun(runs, scenario.medianBy ?? scenario.metrics[0].key));
      }
    }
  }

  /** One run of `scenario` on a fresh `kind` server: recorded, logged, returned. */
  async function measure(scenario: Scenario, kind: ServerKind, run: number): Promise<RunRecord> {
    const outcome = await runOne(scenario, kind, {
      charlaArgs: [...charlaArgs, ...scenario.charlaArgs ?? []],
      cRelay,
      base,
    });
    const record: RunRecord = {
      date: new Date().toISOString(),
      scenario: scenario.name,
      label: scenario.label,
      server: kind,
      params: scenario.params,
      serverArgs: kind === "charla" ? [...charlaArgs, ...scenario.charlaArgs ?? []] : [],
      quick,
      run,
      runs: scenario.runs,
      ...outcome,
      deno: Deno.version.deno,
      node,
      cpu: cpu.model,
      cpus: cpu.cpus,
    };
    await Deno.writeTextFile(resultsFile, JSON.stringify(record) + "\n", { append: true });
    const figures = scenario.metrics
      .map((m) => `${m.label} ${formatBrief(outcome.figures[m.key])}`).join(", ");
    // The verification counts (lost, cut, dup, ...) and notices, so a 0 is seen.
    const notes = Object.entries(outcome.notes)
      .map(([name, value]) => `${name} ${formatBrief(value)}`).join(", ");
    const which = scenario.runs > 1 ? ` run ${run}/${scenario.runs}` : "";
    console.error(`  ${scenario.label} [${kind}${which}]: ${figures} (${notes})`);
    if (outcome.failures.length > 0) {
      console.error(`  !!! FAILED ${kind}: ${outcome.failures.join("; ")}`);
    }
    return record;
  }

  console.log("");
  printTable(selected, records, kinds);
  console.log("");
  printCpuTable(records);
  // Every failed run, not only those the table shows.
  const failed = allRuns.filter((r) => r.failures.length > 0);
  if (failed.length > 0) {
    console.log("\n!!! FAILED RUNS (their figures do not count):");
    for (const r of failed) {
      const which = r.runs > 1 ? ` run ${r.run}/${r.runs}` : "";
      console.log(`!!!   ${r.label} [${r.server}${which}]: ${r.failures.join("; ")}`);
    }
  }
  console.log(`\nresults appended to ${resultsFile.pathname}`);
  // Two charla nodes and Redis against one node: a table of its own (bench/cluster.ts).
  let clusterFailed = 0;
  if (only.includes("cluster")) {
    console.log("\ncluster: 2 nodes + Redis against 1 node, the same clients split over the nodes");
    clusterFailed = await runCluster({ quick: flags.quick, faults: true });
  }
  return failed.length > 0 || buildFailed || clusterFailed > 0 ? 1 : 0;
}

/** Starts the server, runs the scenario, stops the server; failures become outcomes. */
async function runOne(
  scenario: Scenario,
  kind: ServerKind,
  options: Pick<ServerOptions, "charlaArgs" | "cRelay" | "base">,
): Promise<Outcome> {
  const setting = kind === "charla" ? await scenario.charla?.() : undefined;
  try {
    return await runStarted(scenario, kind, {
      ...options,
      charlaArgs: [...options.charlaArgs ?? [], ...setting?.charlaArgs ?? []],
      charlaFlags: setting?.charlaFlags,
    });
  } finally {
    await setting?.cleanup();
  }
}

async function runStarted(
  scenario: Scenario,
  kind: ServerKind,
  options: Pick<ServerOptions, "charlaArgs" | "charlaFlags" | "cRelay">,
): Promise<Outcome> {
  let server: ServerProcess;
  try {
    server = await ServerProcess.start(kind, {
      relay: scenario.relay,
      noV8Flags: scenario.noV8Flags,
      ...options,
    });
  } catch (error) {
    return failedOutcome(`server did not start: ${(error as Error).message}`);
  }
  await using _ = server;
  let outcome: Outcome;
  try {
    outcome = await scenario.run(server);
  } catch (error) {
    outcome = failedOutcome((error as Error).message);
  }
  await server.stop();
  const exit = server.exitedEarly;
  if (exit !== null) {
    outcome.failures.push(`the server exited during the run (code ${exit.code})`);
  }
  if (outcome.failures.length > 0) {
    // What the server said about it: its log often names the reason (say, a client
    // dropped as too slow).
    const stdout = (await server.stdoutTail()).split("\n").slice(-5).join("\n");
    const stderr = await server.stderrTail();
    if (stdout) outcome.failures.push(`server log (last lines):\n${stdout}`);
    if (stderr) outcome.failures.push(`server stderr:\n${stderr}`);
  }
  return outcome;
}

/** The run with the median `key` figure; a failed run, if there is one, wins. */
function medianRun(runs: RunRecord[], key: string): RunRecord {
  const failed = runs.find((run) => run.failures.length > 0);
  if (failed !== undefined) return failed;
  const sorted = runs.toSorted((a, b) => a.figures[key] - b.figures[key]);
  return sorted[Math.floor((sorted.length - 1) / 2)];
}

function formatBrief(value: number | undefined): string {
  return value === undefined || Number.isNaN(value) ? "-" : Number(value.toPrecision(4)).toString();
}

if (import.meta.main) Deno.exit(await main(Deno.args));
