// deno-lint-ignore-file no-console
/**
 * Fan-out with and without `--db`, in the same run: what keeping every line in
 * SQLite costs the relay. Each size runs charla without a database and with a
 * fresh one, alternately, `--runs` times each (so a machine that gets busier
 * during the run weighs on both alike), and compares the medians. The target:
 * with `--db`, deliveries/s within 15% of without.
 *
 * ```sh
 * deno run --allow-net --allow-run --allow-read --allow-write --allow-env --allow-sys bench/db_fanout.ts
 * deno run … bench/db_fanout.ts --quick          # smaller sizes, one run each
 * deno run … bench/db_fanout.ts --clients 10,100 --runs 5   # some sizes (by N), 5 runs each
 * ```
 *
 * `deno task bench` runs the same as its `fanout-db` scenarios (charla only),
 * beside `fanout`: `deno task bench --only fanout,fanout-db --server charla`.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { type FanoutParams, runFanout } from "./fanout.ts";
import { failedOutcome, type Outcome } from "./outcome.ts";
import { ServerProcess } from "./server_process.ts";

/** The fan-out sizes of `deno task bench`, at full or `--quick` size. */
export function fanoutSizes(quick: boolean): FanoutParams[] {
  const q = (full: number, small: number) => quick ? small : full;
  return [
    { clients: 10, senders: 10, lines: q(25_000, 2_500) },
    { clients: 50, senders: 50, lines: q(1_000, 100) },
    { clients: 100, senders: 25, lines: q(1_000, 100) },
    { clients: 1_000, senders: 10, lines: q(250, 25) },
  ];
}

/** How charla is started for one run: its arguments and the permissions they need. */
export interface DbSetting {
  /** `without --db` or `with --db`. */
  label: string;
  /** Server arguments (`ServerOptions.charlaArgs`). */
  charlaArgs: string[];
  /** `deno run` flags (`ServerOptions.charlaFlags`). */
  charlaFlags: string[];
  /** Removes the database's directory, if there is one; call it after the run. */
  cleanup(): Promise<void>;
}

/**
 * charla with a fresh SQLite file (`--db`) in a temporary directory that it
 * may read and write (nothing else). bench/main.ts's `fanout-db` scenarios
 * start charla with this, one fresh file per run.
 */
export async function withDb(): Promise<DbSetting> {
  const dir = await Deno.makeTempDir({ prefix: "charla-bench-db-" });
  return {
    label: "with --db",
    charlaArgs: ["--db", `${dir}/charla.db`],
    charlaFlags: [`--allow-read=${dir}`, `--allow-write=${dir}`],
    cleanup: () => Deno.remove(dir, { recursive: true }),
  };
}

/** The two settings compared: no database, and a fresh one (see {@linkcode withDb}). */
export async function dbFanoutRuns(): Promise<DbSetting[]> {
  return [
    {
      label: "without --db",
      charlaArgs: [],
      charlaFlags: [],
      cleanup: () => Promise.resolve(),
    },
    await withDb(),
  ];
}

/** One fanout run of charla with `setting`; a failure to start is a failed outcome. */
async function runOnce(params: FanoutParams, setting: DbSetting): Promise<Outcome> {
  try {
    await using server = await ServerProcess.start("charla", {
      relay: true,
      charlaArgs: setting.charlaArgs,
      charlaFlags: setting.charlaFlags,
    });
    const outcome = await runFanout(server, params);
    if (outcome.failures.length > 0) outcome.failures.push(await server.stderrTail());
    return outcome;
  } catch (error) {
    return failedOutcome((error as Error).message);
  } finally {
    await setting.cleanup();
  }
}

function median(values: number[]): number {
  const sorted = values.toSorted((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)];
}

/** Runs every size `runs` times per setting, alternating; prints and returns the table. */
export async function benchDbFanout(
  quick: boolean,
  runs: number,
  clients?: number[],
): Promise<number> {
  let failed = 0;
  const rows: string[][] = [[
    "fan-out",
    "deliveries/s without",
    "with --db",
    "with/without",
    "CPU ns/delivery without",
    "with --db",
  ]];
  for (const params of fanoutSizes(quick)) {
    if (clients !== undefined && !clients.includes(params.clients)) continue;
    const label = `N=${params.clients} S=${params.senders} L=${params.lines.toLocaleString("en")}`;
    const figures: Record<string, { rate: number[]; cpu: number[] }> = {
      "without --db": { rate: [], cpu: [] },
      "with --db": { rate: [], cpu: [] },
    };
    for (let run = 1; run <= runs; run++) {
      for (const setting of await dbFanoutRuns()) {
        const outcome = await runOnce(params, setting);
        const rate = outcome.figures.deliveries_per_s;
        const cpu = outcome.figures.server_cpu_ns_per_delivery;
        console.error(
          `  ${label} [${setting.label} ${run}/${runs}]: ` +
            (outcome.failures.length > 0
              ? `FAILED: ${outcome.failures.join("; ")}`
              : `${Math.round(rate).toLocaleString("en")} deliveries/s, ${cpu.toFixed(1)} ns CPU`),
        );
        if (outcome.failures.length > 0) {
          failed++;
          continue;
        }
        figures[setting.label].rate.push(rate);
        figures[setting.label].cpu.push(cpu);
      }
    }
    const without = figures["without --db"];
    const withDb = figures["with --db"];
    const ratio = median(withDb.rate) / median(without.rate);
    rows.push([
      label,
      Math.round(median(without.rate)).toLocaleString("en"),
      Math.round(median(withDb.rate)).toLocaleString("en"),
      `${ratio.toFixed(2)}x`,
      median(without.cpu).toFixed(1),
      median(withDb.cpu).toFixed(1),
    ]);
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  console.log("");
  for (const row of rows) {
    console.log(
      row.map((cell, i) => i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))
        .join("  "),
    );
  }
  return failed;
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      quick: { type: "boolean", default: false },
      runs: { type: "string" },
      clients: { type: "string" },
    },
  });
  const clients = values.clients?.split(",").map(Number);
  const runs = Number(values.runs ?? (values.quick ? 1 : 3));
  console.log(
    `charla fan-out with and without --db: deno ${Deno.version.deno}` +
      (values.quick ? " (quick)" : "") + `, median of ${runs}`,
  );
  Deno.exit(await benchDbFanout(values.quick, runs, clients) > 0 ? 1 : 0);
}
