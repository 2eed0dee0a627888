/**
 * What one scenario run against one server produces, and the CPU accounting
 * around its measured window.
 *
 * @module
 */

import { selfCpuMs } from "./proc.ts";
import type { ServerProcess } from "./server_process.ts";

/** The result of one scenario against one server. */
export interface Outcome {
  /** Figures by name, e.g. `{ deliveries_per_s: 1.2e6 }`. */
  figures: Record<string, number>;
  /** Checks that failed, in words; empty when everything was verified. */
  failures: string[];
  /** Counts that are not failures but worth a look (notices seen, settle time, …). */
  notes: Record<string, number>;
  /** Length of the measured window, in milliseconds. */
  wallMs: number;
  /** CPU time the generator used in the measured window, in milliseconds. */
  generatorCpuMs: number;
  /** CPU time the server used in the measured window, in milliseconds. */
  serverCpuMs: number;
}

/** A run that measured nothing: `why` is its failure. */
export function failedOutcome(why: string): Outcome {
  return {
    figures: {},
    failures: [why],
    notes: {},
    wallMs: 0,
    generatorCpuMs: 0,
    serverCpuMs: 0,
  };
}

/**
 * Wall clock and CPU time of both processes over a measured window, so each
 * figure comes with evidence of whether the generator or the server was the
 * busy one (on a 2-CPU machine they compete for the same cores).
 */
export class Window {
  /** `performance.now()` when the window opened. */
  readonly start: number;
  readonly #server: ServerProcess;
  readonly #generatorCpu: number;
  readonly #serverCpu: number;

  private constructor(server: ServerProcess, serverCpu: number) {
    this.#server = server;
    this.#serverCpu = serverCpu;
    this.#generatorCpu = selfCpuMs();
    this.start = performance.now();
  }

  /** Opens a window now. */
  static async open(server: ServerProcess): Promise<Window> {
    return new Window(server, (await server.usage()).cpuMs);
  }

  /**
   * Closes the window; `end` (a `performance.now()` time) defaults to now. The CPU
   * figures include the few milliseconds until the server's usage has been read.
   */
  async close(
    end = performance.now(),
  ): Promise<Pick<Outcome, "wallMs" | "generatorCpuMs" | "serverCpuMs">> {
    const generatorCpuMs = selfCpuMs() - this.#generatorCpu;
    const serverCpuMs = (await this.#server.usage()).cpuMs - this.#serverCpu;
    return { wallMs: end - this.start, generatorCpuMs, serverCpuMs };
  }
}

/** Failures for clients the server closed during a scenario (they all must stay). */
export function closedFailures(
  clients: readonly { closed: boolean; error: Error | null }[],
): string[] {
  const closed = clients.filter((client) => client.closed);
  if (closed.length === 0) return [];
  const reasons = [...new Set(closed.map((client) => client.error?.name ?? "EOF"))].join(", ");
  return [`${closed.length} of ${clients.length} clients were disconnected (${reasons})`];
}
