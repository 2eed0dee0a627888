// deno-lint-ignore-file no-console
/**
 * Web fanout: N WebSocket clients in one room (charla's `--web` port), S of them
 * send L lines each as fast as they can, and every client must receive every
 * other sender's lines, intact and in order, as JSON frames; measured beside
 * the TCP fanout of the same sizes (bench/fanout.ts) in the same run, each on
 * a fresh server.
 *
 * ```sh
 * deno run -A bench/web.ts            # N=1,000 S=10 L=250, three runs each, median shown
 * deno run -A bench/web.ts --quick    # L=25, one run each
 * ```
 *
 * Runs are appended to `bench/results/<date>.jsonl` as `deno task bench` does.
 * Exit code 1 when a run failed its checks.
 *
 * @module
 */

import { parseArgs } from "node:util";
import {
  allReceived,
  checkDeliveries,
  type FanoutParams,
  FanoutReceiver,
  FanoutRun,
  runFanout,
} from "./fanout.ts";
import { LINE_BYTES, LineStamper, Pattern, PAYLOAD_BYTES } from "./lines.ts";
import { failedOutcome, type Outcome, Window } from "./outcome.ts";
import { cpuInfo, settle } from "./proc.ts";
import { ServerProcess } from "./server_process.ts";
import { connectManyWs, textFrame, type WsBenchClient } from "./ws_client.ts";

const encoder = new TextEncoder();
/** Frames per write: about 64 KiB. */
const FRAMES_PER_WRITE = 600;

/** The web port a charla server started with `--web 0` printed on its second line. */
export async function webPortOf(server: ServerProcess): Promise<number> {
  const deadline = performance.now() + 20_000;
  while (performance.now() < deadline) {
    const text = await Deno.readTextFile(server.stdoutPath);
    const match = /^listening on http:\/\/127\.0\.0\.1:(\d+)\/ \(web\)$/m.exec(text);
    if (match !== null) return Number(match[1]);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`The server did not say where its web port is:\n${await server.stdoutTail()}`);
}

/**
 * What a receiver sees before sender `id`'s text, as the core's `message`
 * event is written by JSON.stringify: the JSON counterpart of `<userN> `.
 */
function messagePrefix(id: number): Pattern {
  return new Pattern(
    encoder.encode(
      `{"type":"message","room":"#lobby","from":{"id":${id},"name":"user${id}"},"text":"`,
    ),
  );
}

/** Sends lines `0..lines` of sender `index` as `line` frames, about 64 KiB per write. */
async function sendFrames(client: WsBenchClient, index: number, lines: number): Promise<void> {
  const stamper = new LineStamper("f", index);
  const head = encoder.encode('{"type":"line","room":"#lobby","text":"');
  const tail = encoder.encode('"}');
  const payload = new Uint8Array(head.length + PAYLOAD_BYTES + tail.length);
  payload.set(head);
  payload.set(tail, head.length + PAYLOAD_BYTES);
  const line = new Uint8Array(LINE_BYTES);
  const batch = new Uint8Array(FRAMES_PER_WRITE * (6 + payload.length));
  for (let seq = 0; seq < lines;) {
    let at = 0;
    for (let k = 0; k < FRAMES_PER_WRITE && seq < lines; k++, seq++) {
      stamper.fill(line, seq, seq + 1);
      payload.set(line.subarray(0, PAYLOAD_BYTES), head.length);
      at = textFrame(payload, batch, at);
    }
    await client.write(batch.subarray(0, at));
  }
}

/** Runs one web fanout against a charla server started with `--relay --web 0`. */
export async function runWebFanout(
  server: ServerProcess,
  params: FanoutParams & { batch: boolean },
): Promise<Outcome> {
  const { clients: n, senders: s, lines } = params;
  const port = await webPortOf(server);
  const clients = await connectManyWs(port, n, { batch: params.batch });
  let sending: Promise<void> = Promise.resolve();
  try {
    const run = new FanoutRun([], lines, n);
    Object.assign(run, { prefixes: clients.slice(0, s).map((c) => messagePrefix(c.id)) });
    const receivers = clients.map((client, i) => {
      const receiver = new FanoutReceiver(run, i < s ? i : -1);
      client.handler = receiver;
      return receiver;
    });
    const settleMs = await settle(server.pid);
    const window = await Window.open(server);
    let writeError: unknown = null;
    sending = Promise.all(clients.slice(0, s).map((client, i) => sendFrames(client, i, lines)))
      .then(() => {}, (error) => void (writeError ??= error));
    const { end, stalled } = await allReceived(run, receivers, clients);
    const measured = await window.close(end);

    const deliveries = s * lines * (n - 1);
    const { counts, failures } = checkDeliveries(receivers, clients, stalled, writeError, {
      ownEchoed: true,
    });
    return {
      figures: {
        deliveries_per_s: deliveries / (measured.wallMs / 1000),
        server_cpu_ns_per_delivery: measured.serverCpuMs * 1e6 / deliveries,
        deliveries,
      },
      failures,
      notes: {
        ...counts, // own: a web sender gets its own lines back, S x L more frames
        notices: clients.reduce((t, c) => t + c.notices, 0),
        settle_ms: settleMs,
      },
      ...measured,
    };
  } finally {
    await server.stop();
    for (const client of clients) client.close();
    await Promise.all(clients.map((client) => client.finished));
    await sending;
  }
}

/** The transports compared: line clients, the page's WebSockets, and plain ones. */
type Kind = "tcp" | "web" | "web-frames";

const KIND_LABELS: Record<Kind, string> = {
  tcp: "TCP (line)",
  web: "WebSocket",
  "web-frames": "WebSocket, 1 event/frame",
};

/** One measured run on a fresh server. */
async function runOnce(kind: Kind, params: FanoutParams): Promise<Outcome> {
  await using server = await ServerProcess.start("charla", {
    relay: true,
    charlaArgs: kind === "tcp" ? [] : ["--web", "0"],
  });
  return kind === "tcp"
    ? await runFanout(server, params)
    : await runWebFanout(server, { ...params, batch: kind === "web" });
}

/** Runs the transports, prints them side by side; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { quick: { type: "boolean", default: false } },
  });
  const quick = values.quick;
  // Clients that take one event per frame cost the server a WebSocket send per
  // delivery, ten times what a batch costs: they get a fifth of the lines, once.
  const plans: { kind: Kind; params: FanoutParams; runs: number }[] = [
    { kind: "tcp", params: { clients: 1_000, senders: 10, lines: quick ? 25 : 250 }, runs: 3 },
    { kind: "web", params: { clients: 1_000, senders: 10, lines: quick ? 25 : 250 }, runs: 3 },
    { kind: "web-frames", params: { clients: 1_000, senders: 10, lines: quick ? 5 : 50 }, runs: 1 },
  ];
  if (quick) { for (const plan of plans) plan.runs = 1; }
  const cpu = await cpuInfo();
  console.log(
    `charla web bench: deno ${Deno.version.deno}, ${cpu.model} x${cpu.cpus}: ` +
      "fanout to 1,000 clients in one room, 10 of them sending",
  );
  const resultsDir = new URL("./results/", import.meta.url);
  await Deno.mkdir(resultsDir, { recursive: true });
  const resultsFile = new URL(`${new Date().toISOString().slice(0, 10)}.jsonl`, resultsDir);
  const medians = new Map<Kind, Outcome>();
  let failed = false;
  for (const { kind, params, runs } of plans) {
    const label = `web fanout ${KIND_LABELS[kind]} N=${params.clients} S=${params.senders} ` +
      `L=${params.lines}`;
    const outcomes: Outcome[] = [];
    for (let i = 1; i <= runs; i++) {
      let outcome: Outcome;
      try {
        outcome = await runOnce(kind, params);
      } catch (error) {
        outcome = failedOutcome((error as Error).message);
      }
      outcomes.push(outcome);
      const record = {
        date: new Date().toISOString(),
        scenario: `web-fanout-${kind}`,
        label,
        server: "charla",
        params,
        quick,
        run: i,
        runs,
        ...outcome,
        deno: Deno.version.deno,
        cpu: cpu.model,
        cpus: cpu.cpus,
      };
      await Deno.writeTextFile(resultsFile, JSON.stringify(record) + "\n", { append: true });
      const f = outcome.figures;
      console.error(
        `  ${label} run ${i}/${runs}: ` +
          `${Math.round(f.deliveries_per_s ?? 0).toLocaleString("en")} deliveries/s, ` +
          `${(f.server_cpu_ns_per_delivery ?? 0).toFixed(0)} server CPU ns/delivery ` +
          `(${Object.entries(outcome.notes).map(([k, v]) => `${k} ${Math.round(v)}`).join(", ")})`,
      );
      if (outcome.failures.length > 0) {
        failed = true;
        console.error(`  !!! FAILED: ${outcome.failures.join("; ")}`);
      }
    }
    const ok = outcomes.filter((o) => o.failures.length === 0)
      .toSorted((a, b) => a.figures.deliveries_per_s - b.figures.deliveries_per_s);
    if (ok.length > 0) medians.set(kind, ok[Math.floor((ok.length - 1) / 2)]);
  }
  const row = (name: string, pick: (o: Outcome, plan: (typeof plans)[number]) => number) => [
    name,
    ...plans.map((plan) => {
      const outcome = medians.get(plan.kind);
      return outcome === undefined
        ? "FAILED"
        : Math.round(pick(outcome, plan)).toLocaleString("en");
    }),
  ];
  const rows = [
    ["", ...plans.map((p) => KIND_LABELS[p.kind])],
    row("lines per sender", (_, plan) => plan.params.lines),
    row("deliveries/s", (o) => o.figures.deliveries_per_s),
    row("server CPU ns/delivery", (o) => o.figures.server_cpu_ns_per_delivery),
    row("wall ms", (o) => o.wallMs),
    row("generator CPU ms", (o) => o.generatorCpuMs),
    row("server CPU ms", (o) => o.serverCpuMs),
  ];
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  console.log("");
  for (const r of rows) {
    console.log(
      r.map((cell, c) => c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c])).join("  "),
    );
  }
  console.log(`\nresults appended to ${resultsFile.pathname}`);
  return failed ? 1 : 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
