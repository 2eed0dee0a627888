/**
 * Broadcast: the operator types a line, and every one of thousands of clients must
 * receive it; the figure is the time until the last one has.
 *
 * @module
 */

import { BenchClient, closeAll, connectMany, type LineHandler } from "./bench_client.ts";
import { readDigits } from "./lines.ts";
import { closedFailures, type Outcome, Window } from "./outcome.ts";
import { settle } from "./proc.ts";
import type { ServerProcess } from "./server_process.ts";

/** Sizes of one broadcast run. */
export interface BroadcastParams {
  /** Connected clients. */
  clients: number;
  /** Operator lines sent, one after the other. */
  repeats: number;
}

const HELLO = new TextEncoder().encode("<server> hello ");
/** A broadcast that has not reached everyone by then has failed. */
const TIMEOUT_MS = 30_000;

/** Which operator line the run is waiting for, and who has seen it. */
class BroadcastRound {
  nonce = -1;
  missing = 0;
  done = Promise.withResolvers<number>();

  start(nonce: number, clients: number): void {
    this.nonce = nonce;
    this.missing = clients;
    this.done = Promise.withResolvers<number>();
  }
}

/** Watches one client for `<server> hello <nonce>`; rejects every other line. */
class HelloWatcher implements LineHandler {
  #seen = -1;
  readonly #round: BroadcastRound;

  constructor(round: BroadcastRound) {
    this.#round = round;
  }

  line(buf: Uint8Array, start: number, end: number): boolean {
    const round = this.#round;
    const nonce = isHello(buf, start, end) ? readDigits(buf, start + HELLO.length, end) : -1;
    if (nonce !== round.nonce || this.#seen === nonce) return false;
    this.#seen = nonce;
    if (--round.missing === 0) round.done.resolve(performance.now());
    return true;
  }
}

function isHello(buf: Uint8Array, start: number, end: number): boolean {
  if (end - start <= HELLO.length) return false;
  for (let i = 0; i < HELLO.length; i++) if (buf[start + i] !== HELLO[i]) return false;
  return true;
}

/** Runs the broadcast repeats against a relay-mode server. */
export async function runBroadcast(
  server: ServerProcess,
  params: BroadcastParams,
): Promise<Outcome> {
  let clients: BenchClient[] = [];
  try {
    clients = await connectMany(server.port, params.clients, {
      bufferSize: 4096, // as for idle clients: the arrivals bring 50 million join notices
      concurrency: 200,
    });
    const round = new BroadcastRound();
    for (const client of clients) client.handler = new HelloWatcher(round);
    const settleMs = await settle(server.pid);

    const window = await Window.open(server);
    const times: number[] = [];
    const failures: string[] = [];
    for (let i = 0; i < params.repeats; i++) {
      const nonce = 100_000_000 + Math.floor(Math.random() * 900_000_000);
      round.start(nonce, clients.length);
      const timer = setTimeout(() => round.done.resolve(NaN), TIMEOUT_MS);
      const start = performance.now();
      await server.say(`hello ${nonce}`);
      const end = await round.done.promise;
      clearTimeout(timer);
      if (Number.isNaN(end)) {
        failures.push(`broadcast ${i + 1}: ${round.missing} clients missed it after 30 s`);
        break;
      }
      times.push(end - start);
      // The next line goes out only once the server is idle again.
      await settle(server.pid, { quietMs: 100 });
    }
    const measured = await window.close();
    times.sort((a, b) => a - b);
    const stray = clients.reduce((t, c) => t + c.rejected + c.overlong, 0);
    if (stray > 0) failures.push(`${stray} unexpected lines (not the operator's, or twice)`);
    failures.push(...closedFailures(clients));
    return {
      figures: {
        median_ms: times.length > 0 ? times[Math.floor((times.length - 1) / 2)] : NaN,
        max_ms: times.length > 0 ? times[times.length - 1] : NaN,
        min_ms: times.length > 0 ? times[0] : NaN,
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
