/**
 * Idle: what thousands of connected, silent clients cost the server in memory.
 *
 * @module
 */

import { closeAll, connectMany } from "./bench_client.ts";
import { closedFailures, type Outcome, Window } from "./outcome.ts";
import { settle } from "./proc.ts";
import type { ServerProcess } from "./server_process.ts";

/** Sizes of one idle run. */
export interface IdleParams {
  /** Connections to open and hold. */
  connections: number;
}

/**
 * Read buffer of each idle client. They only ever receive a welcome and notices,
 * but while thousands arrive, every "joined" notice goes to everyone: 15,000
 * clients are sent 112 million of them, so a buffer that takes many per read keeps
 * the generator up with the server (60 MB for 15,000). A notice longer than the
 * buffer is skipped, not held.
 */
const IDLE_BUFFER = 4096;
/** Connections being opened at once (see connectMany). */
const CONCURRENCY = 200;

/**
 * Opens the connections, waits until each got its welcome and the server is
 * quiet again, and reads the server's resident memory before and after.
 */
export async function runIdle(server: ServerProcess, params: IdleParams): Promise<Outcome> {
  const n = params.connections;
  await settle(server.pid);
  const rssBefore = (await server.usage()).rssKiB;
  const window = await Window.open(server);
  const clients = await connectMany(server.port, n, {
    bufferSize: IDLE_BUFFER,
    concurrency: CONCURRENCY,
  });
  try {
    const connectedMs = performance.now() - window.start;
    // Memory is read once the server stops working (join notices, garbage collection
    // it runs while busy), so the figure is what idle clients cost, not a transient.
    const settleMs = await settle(server.pid, { quietMs: 500 });
    const rssAfter = (await server.usage()).rssKiB;
    const measured = await window.close();
    const failures = closedFailures(clients);
    const unexpected = clients.reduce((t, c) => t + c.rejected + c.overlong, 0);
    if (unexpected > 0) failures.push(`${unexpected} unexpected lines`);
    return {
      figures: {
        kib_per_connection: (rssAfter - rssBefore) / n,
        rss_before_mib: rssBefore / 1024,
        rss_after_mib: rssAfter / 1024,
        connections_per_s: n / (connectedMs / 1000),
        held: clients.filter((client) => !client.closed).length,
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
