// deno-lint-ignore-file no-console
/**
 * The bench's tables: charla's figures beside the Node relay's, and where the CPU
 * time went.
 *
 * @module
 */

import type { Outcome } from "./outcome.ts";
import type { ServerKind } from "./server_process.ts";

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

/** Prints figure by figure: charla, node, charla/node, and which way is better. */
export function printTable(
  scenarios: { label: string; metrics: Metric[] }[],
  records: RunRecord[],
  kinds: ServerKind[],
): void {
  const rows: string[][] = [["scenario", "figure", ...kinds]];
  const both = kinds.length === 2;
  if (both) rows[0].push("charla/node", "better");
  for (const scenario of scenarios) {
    const runs = kinds.map((kind) =>
      records.find((r) => r.label === scenario.label && r.server === kind)
    );
    for (const metric of scenario.metrics) {
      const values = runs.map((run) => run?.figures[metric.key]);
      // A failed run's figures measure the failure (say, the time until clients were
      // dropped), not the server: they stay in the results file but not in the table.
      const cells = runs.map((run, i) =>
        run !== undefined && run.failures.length > 0 ? "FAILED" : format(values[i])
      );
      const row = [scenario.label, metric.label, ...cells];
      if (both) {
        const [charla, node] = values;
        const failed = runs.some((run) => run === undefined || run.failures.length > 0);
        const ratio = !failed && charla !== undefined && node !== undefined && node !== 0
          ? `${(charla / node).toFixed(2)}x`
          : "-";
        row.push(ratio, metric.better);
      }
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
