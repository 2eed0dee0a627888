// deno-lint-ignore-file no-console
/**
 * The SQLite store on its own, run by hand (not part of `deno task bench`):
 *
 * 1. Throughput: `--lines` lines (default 1,000,000) over `--rooms` rooms,
 *    appended 1,000 per event-loop turn as fast as the store writes them
 *    (the generator waits while more than 50,000 are unwritten, so that
 *    nothing is dropped); how fast append() returns (the chat thread's cost)
 *    and how fast lines become durable (the writer's), with the group
 *    commits' sizes and windows.
 * 2. Commit window at a steady rate: `--rates` lines per second for
 *    `--seconds` each; p50/p99/max of the `stored` events' `ms` (from a
 *    batch's oldest line being appended to its commit being reported).
 * 3. Restart: the file of step 1 (1,000,000 lines by default) opened again;
 *    the time to open it and to replay 50 lines of one room (the first
 *    `recent()` of a room reads them from the file), then of 50 more rooms.
 *
 * ```sh
 * deno run --allow-read --allow-write bench/store.ts
 * deno run --allow-read --allow-write bench/store.ts --lines 200000 --rates 1000,50000
 * ```
 *
 * Loops are bounded by `--lines` and `--seconds`; the file lives in a temporary
 * directory removed at the end (`--keep-file` keeps it).
 *
 * @module
 */

import { parseArgs } from "node:util";
import process from "node:process";
import type { HistoryLine } from "../lib/core/messages.ts";
import { SqliteStore } from "../lib/store/sqlite.ts";
import type { StoreEvent } from "../lib/store/store.ts";

const args = parseArgs({
  args: Deno.args,
  options: {
    lines: { type: "string", default: "1000000" },
    rooms: { type: "string", default: "100" },
    rates: { type: "string", default: "1000,10000,50000,100000" },
    seconds: { type: "string", default: "5" },
    "commit-ms": { type: "string", default: "5" },
    "keep-file": { type: "boolean", default: false },
  },
}).values;
const LINES = Number(args.lines);
const ROOMS = Number(args.rooms);
const RATES = args.rates.split(",").map(Number);
const SECONDS = Number(args.seconds);
const COMMIT_MS = Number(args["commit-ms"]);
/** A typical chat line: 60 characters. */
const TEXT = "the quick brown fox jumps over the lazy dog, and then some...";

const rooms = Array.from({ length: ROOMS }, (_, i) => `#room${i}`);
const turn = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

function cpuMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

/** Opens a store that records its events. */
async function openStore(path: string, keep: number) {
  const events: StoreEvent[] = [];
  const store = await SqliteStore.open(path, {
    keep,
    commitMs: COMMIT_MS,
    onEvent: (e) => events.push(e),
  });
  return { store, events };
}

function windows(events: StoreEvent[]): { commits: number; lines: number; ms: number[] } {
  const stored = events.filter((e) => e.type === "stored");
  return {
    commits: stored.length,
    lines: stored.reduce((sum, e) => sum + e.lines, 0),
    ms: stored.map((e) => e.ms).sort((a, b) => a - b),
  };
}

/** Failures and dropped lines, if any: a run that dropped lines did not keep up. */
function trouble(events: StoreEvent[]): string {
  const failed = events.filter((e) => e.type === "failed");
  const dropped = events.reduce((sum, e) => sum + (e.type === "recovered" ? e.dropped ?? 0 : 0), 0);
  return failed.length === 0 ? "" : `; ${failed.length} failed (${dropped} lines dropped)`;
}

function describe(ms: number[]): string {
  const f = (n: number) => n.toFixed(1);
  return `p50 ${f(percentile(ms, 0.5))} ms, p99 ${f(percentile(ms, 0.99))} ms, ` +
    `max ${f(ms.at(-1) ?? NaN)} ms`;
}

const dir = await Deno.makeTempDir({ prefix: "charla_store_bench_" });
const path = `${dir}/bench.db`;
console.log(`deno ${Deno.version.deno}, ${navigator.hardwareConcurrency} CPUs; file ${path}`);
try {
  // 1. Throughput.
  {
    // keep: every line stays, so that step 3 opens a file of LINES lines.
    const { store, events } = await openStore(path, Math.ceil(LINES / ROOMS));
    const cpu0 = cpuMs();
    const t0 = performance.now();
    let inAppend = 0;
    for (let i = 0; i < LINES;) {
      if (store.pending > 50_000) {
        await turn();
        continue;
      }
      const a = performance.now();
      const end = Math.min(LINES, i + 1_000);
      for (; i < end; i++) {
        const line: HistoryLine = {
          room: rooms[i % ROOMS],
          time: Date.now(),
          from: "ana",
          kind: "message",
          text: TEXT,
        };
        store.append(line);
      }
      inAppend += performance.now() - a;
      await turn();
    }
    await store.flush();
    const durable = performance.now() - t0;
    const cpu = cpuMs() - cpu0;
    const w = windows(events);
    console.log(
      `\n1. ${LINES} lines over ${ROOMS} rooms, 1,000 per turn, as fast as they are written`,
    );
    console.log(
      `   append():    ${(LINES / inAppend * 1000).toFixed(0)} lines/s inside append() ` +
        `(${(inAppend * 1e6 / LINES).toFixed(0)} ns a line on the chat thread)`,
    );
    console.log(
      `   durable:     ${(w.lines / durable * 1000).toFixed(0)} lines/s ` +
        `(the last one committed after ${durable.toFixed(0)} ms); ` +
        `process CPU ${(cpu / durable * 100).toFixed(0)}% of one core`,
    );
    console.log(
      `   commits:     ${w.commits}, ${(w.lines / w.commits).toFixed(0)} lines each on average; ` +
        `window ${describe(w.ms)}${trouble(events)}`,
    );
    await store.close();
  }

  // 2. Commit window at steady rates (another file, so step 3 sees LINES lines).
  console.log(
    `\n2. Steady rates for ${SECONDS} s each, over ${ROOMS} rooms, keep 1,000 ` +
      `(commitMs ${COMMIT_MS})`,
  );
  for (const rate of RATES) {
    const ratePath = `${dir}/rate_${rate}.db`;
    // keep 1,000: at the higher rates rooms are pruned as they go, as in a long run.
    const { store, events } = await openStore(ratePath, 1_000);
    const cpu0 = cpuMs();
    const t0 = performance.now();
    let sent = 0;
    let busy = 0;
    while (performance.now() - t0 < SECONDS * 1000) {
      const due = Math.floor((performance.now() - t0) / 1000 * rate);
      const a = performance.now();
      for (; sent < due; sent++) {
        store.append({
          room: rooms[sent % ROOMS],
          time: Date.now(),
          from: "ana",
          kind: "message",
          text: TEXT,
        });
      }
      busy += performance.now() - a;
      await turn();
    }
    await store.flush();
    const cpu = cpuMs() - cpu0;
    const elapsed = performance.now() - t0;
    const w = windows(events);
    console.log(
      `   ${String(rate).padStart(7)} lines/s: ${w.commits} commits of ` +
        `${(w.lines / Math.max(1, w.commits)).toFixed(0)} lines; window ${describe(w.ms)}; ` +
        `append() ${(busy / elapsed * 100).toFixed(1)}% of the chat thread, ` +
        `process CPU ${(cpu / elapsed * 100).toFixed(0)}%${trouble(events)}`,
    );
    await store.close();
  }

  // 3. Restart.
  {
    const { size } = await Deno.stat(path);
    const t0 = performance.now();
    const { store } = await openStore(path, Math.ceil(LINES / ROOMS));
    const opened = performance.now() - t0;
    const t1 = performance.now();
    const replay = store.recent(rooms[Math.min(7, ROOMS - 1)], 50);
    const replayed = performance.now() - t1;
    if (replay.length !== 50) throw new Error(`Replayed ${replay.length} lines, not 50`);
    const t2 = performance.now();
    for (let r = 8; r < Math.min(ROOMS, 58); r++) store.recent(rooms[r], 50);
    const more = (performance.now() - t2) / Math.max(1, Math.min(ROOMS, 58) - 8);
    console.log(
      `\n3. Restart on ${LINES} lines (${(size / 1e6).toFixed(0)} MB, OS cache warm): ` +
        `open ${opened.toFixed(1)} ms, first replay of 50 lines ${replayed.toFixed(2)} ms, ` +
        `then ${more.toFixed(2)} ms a room`,
    );
    await store.close();
  }
} finally {
  if (args["keep-file"]) console.log(`kept ${dir}`);
  else await Deno.remove(dir, { recursive: true });
}
