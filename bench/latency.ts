/**
 * Latency: one client sends at a steady rate, paced by timers; every other client
 * measures how long each line took to reach it.
 *
 * @module
 */

import { closeAll, connectMany, type LineHandler } from "./bench_client.ts";
import {
  FILLER_AT,
  LINE_BYTES,
  LineStamper,
  PAYLOAD_BYTES,
  readDigits,
  SEQ_AT,
  SEQ_DIGITS,
  STAMP_DIGITS,
  writeDigits,
} from "./lines.ts";
import { closedFailures, type Outcome, Window } from "./outcome.ts";
import { settle } from "./proc.ts";
import type { ServerProcess } from "./server_process.ts";

/** Sizes of one latency run. */
export interface LatencyParams {
  /** Connected clients; one sends, the others measure. */
  clients: number;
  /** Lines per second the sender sends. */
  rate: number;
  /** How long it sends, in seconds. */
  seconds: number;
}

const TAG_LATENCY = "t".charCodeAt(0);
/** How long after the last send a receiver may still be waiting for lines. */
const DRAIN_MS = 5_000;
/**
 * The first lines of a run, whose p99 is also given apart: a fresh server's
 * slowest lines come there (code not yet compiled by V8's top tiers, the first
 * collections after the clients joined), and the rest of the run shows the
 * server once warm. At 1,000 lines a second, the first half second.
 */
export const EARLY_LINES = 500;

/**
 * Records the latency of every line one receiver gets. The send time travels in
 * the line (microseconds of `performance.now()`): sender and receivers live in the
 * generator process, so they read the same clock. The arrival time is taken when
 * the generator handles the read that brought the line, once per read.
 *
 * One thread handles the 99 receivers' reads one after the other, so a line's
 * figure includes the generator's own work on the reads handled before it: at
 * about 4-5 µs per read here, up to ~0.5 ms for the last receiver and half that
 * on average. Every server is measured through the same floor; the generator's
 * CPU time, reported beside each run, shows its size.
 */
export class LatencyReceiver implements LineHandler {
  /** Latency of each line received, in milliseconds. */
  readonly samples: Float64Array;
  count = 0;
  /** Lines out of order (malformed ones are rejected and counted by the client). */
  bad = 0;
  #next = 0;
  readonly #client: { readAt: number };

  constructor(client: { readAt: number }, total: number) {
    this.#client = client;
    this.samples = new Float64Array(total);
  }

  line(buf: Uint8Array, start: number, end: number): boolean {
    const p = end - PAYLOAD_BYTES;
    const seq = p > start && buf[p] === TAG_LATENCY
      ? readDigits(buf, p + SEQ_AT, p + SEQ_AT + SEQ_DIGITS)
      : -1;
    const sentUs = readDigits(buf, p + FILLER_AT, p + FILLER_AT + STAMP_DIGITS);
    if (seq < 0 || sentUs < 0) return false;
    if (seq !== this.#next || this.count === this.samples.length) {
      this.bad++;
      return true;
    }
    this.#next++;
    this.samples[this.count++] = this.#client.readAt - sentUs / 1000;
    return true;
  }
}

/** The latencies of lines `from` to `to` (by number) of every receiver, sorted. */
function gather(receivers: LatencyReceiver[], from: number, to: number): Float64Array {
  const counts = receivers.map((r) => Math.max(0, Math.min(r.count, to) - from));
  const out = new Float64Array(counts.reduce((t, n) => t + n, 0));
  let at = 0;
  receivers.forEach((r, i) => {
    out.set(r.samples.subarray(from, from + counts[i]), at);
    at += counts[i];
  });
  return out.sort();
}

/** The value below which `fraction` of the sorted `values` lie (nearest rank). */
export function percentile(sorted: Float64Array, fraction: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil(fraction * sorted.length) - 1;
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank))];
}

/**
 * Sends `total` latency lines at `rate` a second from `start` on, paced by
 * timers: each wake-up sends the lines due by now (64 at most), stamped with
 * the time of the write. Timers are late now and then; a late line carries its
 * real send time, so lateness of the timer is not counted as server latency.
 */
export async function sendPaced(
  sender: { write(bytes: Uint8Array): Promise<unknown> },
  total: number,
  rate: number,
  start: number,
): Promise<void> {
  const stamper = new LineStamper("t", 0);
  const batch = new Uint8Array(64 * LINE_BYTES);
  let sent = 0;
  while (sent < total) {
    const now = performance.now();
    const due = Math.min(total, Math.floor((now - start) * rate / 1000) + 1, sent + 64);
    if (due > sent) {
      const length = stamper.fill(batch, sent, due);
      const nowUs = Math.round(performance.now() * 1000);
      for (let at = 0; at < length; at += LINE_BYTES) {
        writeDigits(batch, at + FILLER_AT, STAMP_DIGITS, nowUs);
      }
      await sender.write(batch.subarray(0, length));
      sent = due;
    }
    const wait = start + sent * 1000 / rate - performance.now();
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, wait)));
  }
}

/** Runs one latency measurement against a relay-mode server. */
export async function runLatency(server: ServerProcess, params: LatencyParams): Promise<Outcome> {
  const total = Math.round(params.rate * params.seconds);
  const clients = await connectMany(server.port, params.clients, {
    bufferSize: 16_384,
    timestamps: true,
  });
  try {
    const [sender, ...rest] = clients;
    const receivers = rest.map((client) => {
      const receiver = new LatencyReceiver(client, total);
      client.handler = receiver;
      return receiver;
    });
    const settleMs = await settle(server.pid);

    const window = await Window.open(server);
    await sendPaced(sender, total, params.rate, window.start);
    const sendEnd = performance.now();
    while (
      receivers.some((r) => r.count + r.bad < total) && performance.now() - sendEnd < DRAIN_MS
    ) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const measured = await window.close();

    const all = gather(receivers, 0, total);
    const early = gather(receivers, 0, EARLY_LINES);
    const after = gather(receivers, EARLY_LINES, total);
    const expected = total * receivers.length;
    const failures: string[] = [];
    if (all.length < expected) failures.push(`${expected - all.length} lines lost`);
    const bad = receivers.reduce((t, r) => t + r.bad, 0) +
      clients.reduce((t, c) => t + c.rejected + c.overlong, 0);
    if (bad > 0) failures.push(`${bad} malformed or out-of-order lines`);
    failures.push(...closedFailures(clients));
    return {
      figures: {
        p50_ms: percentile(all, 0.5),
        p90_ms: percentile(all, 0.9),
        p99_ms: percentile(all, 0.99),
        p99_early_ms: percentile(early, 0.99),
        p99_after_ms: percentile(after, 0.99),
        max_ms: all.length > 0 ? all[all.length - 1] : NaN,
        samples: all.length,
      },
      failures,
      notes: { notices: clients.reduce((t, c) => t + c.notices, 0), settle_ms: settleMs },
      ...measured,
    };
  } finally {
    await server.stop();
    await closeAll(clients);
  }
}
