/**
 * Ingest: one client floods a console-mode server, which logs every line to its
 * stdout (a file); the figure is lines per second until the server has consumed
 * them all and closed the connection.
 *
 * @module
 */

import { BenchClient } from "./bench_client.ts";
import {
  fillerMatches,
  LF,
  LINE_BYTES,
  LineStamper,
  readDigits,
  SENDER_AT,
  SEQ_AT,
  SEQ_DIGITS,
  SPACE,
} from "./lines.ts";
import { type Outcome, Window } from "./outcome.ts";
import { settle } from "./proc.ts";
import type { ServerProcess } from "./server_process.ts";

/** Sizes of one ingest run. */
export interface IngestParams {
  /** Lines the client sends. */
  lines: number;
}

/** "~": a byte that neither the log prefix nor the filler contains, so it marks payloads. */
const MARKER = "~";
const MARKER_BYTE = MARKER.charCodeAt(0);
/** Lines per write; see fanout for why the generator writes in 64 KiB batches. */
const LINES_PER_WRITE = 1024;
/** A server that has not closed the connection by then has failed. */
const TIMEOUT_MS = 120_000;

/**
 * Counts the logged payloads of run `nonce` in `log`: every line holding
 * `~<nonce> <seq> <filler>` must be there once, in order, with its filler intact.
 */
function countLogged(log: Uint8Array, nonce: number): { logged: number; bad: number } {
  let logged = 0;
  let bad = 0;
  let p = -1;
  const view = new DataView(log.buffer, log.byteOffset, log.length);
  while ((p = log.indexOf(MARKER_BYTE, p + 1)) >= 0) {
    if (readDigits(log, p + SENDER_AT, p + SENDER_AT + 4) !== nonce) continue;
    const seq = readDigits(log, p + SEQ_AT, p + SEQ_AT + SEQ_DIGITS);
    const intact = log[p + SEQ_AT - 1] === SPACE && log[p + LINE_BYTES - 1] === LF &&
      fillerMatches(view, log, p, seq);
    if (seq === logged && intact) logged++;
    else bad++;
  }
  return { logged, bad };
}

/** Runs one ingest against a console-mode server. */
export async function runIngest(server: ServerProcess, params: IngestParams): Promise<Outcome> {
  const { lines } = params;
  const client = await BenchClient.connect(server.port, { bufferSize: 4096 });
  try {
    const settleMs = await settle(server.pid);
    const nonce = 1000 + Math.floor(Math.random() * 9000);
    const stamper = new LineStamper(MARKER, nonce);
    const batch = new Uint8Array(LINES_PER_WRITE * LINE_BYTES);

    const window = await Window.open(server);
    // Closing the socket ends a write or read that would otherwise wait forever.
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      client.close();
    }, TIMEOUT_MS);
    let writeError: unknown = null;
    try {
      for (let seq = 0; seq < lines; seq += LINES_PER_WRITE) {
        const length = stamper.fill(batch, seq, lines);
        await client.write(length === batch.length ? batch : batch.subarray(0, length));
      }
      // Half-close: the server sees EOF once it has read every line, logs the client
      // leaving and closes; our read then returns null. So the close marks the moment
      // the server had consumed everything.
      await client.conn.closeWrite();
    } catch (error) {
      writeError = error;
    }
    await client.finished;
    clearTimeout(timer);
    const measured = await window.close();

    const failures: string[] = [];
    if (timedOut) {
      failures.push(`the server had not consumed every line after ${TIMEOUT_MS / 1000} s`);
    } else if (writeError !== null) {
      failures.push(`sending failed: ${writeError}`);
    } else if (client.error !== null) {
      failures.push(`the connection ended with ${client.error.name}`);
    }
    // The server may still be writing its log: wait until it is idle, then count.
    await settle(server.pid, { quietMs: 200 });
    const { logged, bad } = countLogged(await Deno.readFile(server.stdoutPath), nonce);
    if (logged !== lines) failures.push(`${lines - logged} of ${lines} lines missing from the log`);
    if (bad > 0) failures.push(`${bad} log lines damaged, duplicated or out of order`);
    return {
      figures: {
        lines_per_s: lines / (measured.wallMs / 1000),
        server_cpu_ns_per_line: measured.serverCpuMs * 1e6 / lines,
        logged,
      },
      failures,
      notes: { notices: client.notices, rejected: client.rejected, settle_ms: settleMs },
      ...measured,
    };
  } finally {
    await server.stop();
    client.close();
    await client.finished;
  }
}
