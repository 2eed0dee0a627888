// deno-lint-ignore-file no-console
/**
 * The bench's tables: every server's figures side by side with charla's ratio to
 * each peer, and where the CPU time went.
 *
 * @module
 */

import type { Outcome } from "./outcome.ts";
import { SERVER_TITLES, type ServerKind } from "./server_process.ts";

/** One figure a scenario compares across servers. */
export interface Metric {
  /** Key in {@linkcode Outcome.figures}. */
  key: string;
  /** Column text. */
  label: string;
  /** Which way is better, so the ratio can be read. */
  better: "higher" | "lower";
}

/** One scenario run against one server, as appended to the results file. */
export interface RunRecord extends Outcome {
  /** ISO time of the run. */
  date: string;
  /** Scenario name (`--only`). */
  scenario: string;
  /** Scenario with its sizes, as the table shows it. */
  label: string;
  /** Which server ran. */
  server: ServerKind;
  /** Scenario sizes. */
  params: Record<string, number>;
  /** Extra server arguments this run used (`--charla-args`). */
  serverArgs: string[];
  /** Whether this was a `--quick` run. */
  quick: boolean;
  /** Which run of the scenario against this server this was (1-based). */
  run: number;
  /** How many runs there were; the table shows the median one. */
  runs: number;
  /** Deno version of the generator (and of charla). */
  deno: string;
  /** Node version of the peer, or null when it was not run. */
  node: string | null;
  /** CPU model from /proc/cpuinfo. */
  cpu: string;
  /** Logical CPUs. */
  cpus: number;
}

/**
 * Prints figure by figure: each server's figure, then charla's ratio to each
 * peer (charla/C, charla/Node, charla/Deno), and which way is better. A ratio
 * above 1 is charla's figure being larger: worse for a time or a cost, better
 * for a rate.
 */
export function printTable(
  scenarios: { label: string; metrics: Metric[] }[],
  records: RunRecord[],
  kinds: ServerKind[],
): void {
  const peers = kinds.includes("charla") ? kinds.filter((kind) => kind !== "charla") : [];
  const rows: string[][] = [[
    "scenario",
    "figure",
    ...kinds.map((kind) => SERVER_TITLES[kind]),
    ...peers.map((kind) => `charla/${SERVER_TITLES[kind]}`),
  ]];
  if (peers.length > 0) rows[0].push("better");
  for (const scenario of scenarios) {
    const runs = new Map(kinds.map((kind) => [
      kind,
      records.find((r) => r.label === scenario.label && r.server === kind),
    ]));
    const ok = (kind: ServerKind) => {
      const run = runs.get(kind);
      return run !== undefined && run.failures.length === 0;
    };
    for (const metric of scenario.metrics) {
      const value = (kind: ServerKind) => runs.get(kind)?.figures[metric.key];
      // A failed run's figures measure the failure (say, the time until clients were
      // dropped), not the server: they stay in the results file but not in the table.
      const cells = kinds.map((kind) =>
        runs.get(kind) !== undefined && !ok(kind) ? "FAILED" : format(value(kind))
      );
      const ratios = peers.map((kind) => {
        const charla = value("charla");
        const peer = value(kind);
        return ok("charla") && ok(kind) && charla !== undefined && peer !== undefined &&
            peer !== 0 && Number.isFinite(charla / peer)
          ? `${(charla / peer).toFixed(2)}x`
          : "-";
      });
      const row = [scenario.label, metric.label, ...cells, ...ratios];
      if (peers.length > 0) row.push(metric.better);
      rows.push(row);
    }
  }
  printRows(rows, 2);
}

/**
 * Prints wall time and the CPU time of generator and server in each measured
 * window: with both on the same machine, a generator near 100% of one core
 * would mean the figure measures the generator, not the server.
 */
export function printCpuTable(records: RunRecord[]): void {
  const rows: string[][] = [["scenario", "server", "wall ms", "generator cpu ms", "server cpu ms"]];
  for (const r of records) {
    const share = (ms: number) => r.wallMs > 0 ? ` (${Math.round(100 * ms / r.wallMs)}%)` : "";
    rows.push([
      r.label,
      r.server,
      r.wallMs.toFixed(0),
      r.generatorCpuMs.toFixed(0) + share(r.generatorCpuMs),
      r.serverCpuMs.toFixed(0) + share(r.serverCpuMs),
    ]);
  }
  printRows(rows, 2);
}

/** Prints rows as aligned columns; the first `textColumns` are left-aligned. */
function printRows(rows: string[][], textColumns: number): void {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((row) => (row[c] ?? "").length)));
  for (const row of rows) {
    console.log(
      row.map((cell, c) => c < textColumns ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))
        .join("  ").trimEnd(),
    );
  }
}

/** A figure with three significant digits, thousands separated; "-" when missing. */
function format(value: number | undefined): string {
  if (value === undefined || Number.isNaN(value)) return "-";
  if (Math.abs(value) >= 1000) return Math.round(value).toLocaleString("en");
  return Number(value.toPrecision(3)).toString();
}
