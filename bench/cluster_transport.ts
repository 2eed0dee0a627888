// deno-lint-ignore-file no-console
/**
 * Why the cluster carries room lines in Redis streams rather than pub/sub:
 * what each costs Redis, measured on one fresh redis-server. Run by hand:
 *
 * ```sh
 * deno run --allow-net --allow-run --allow-read --allow-write --allow-env bench/cluster_transport.ts
 * ```
 *
 * One writer sends N entries of 64 bytes (1,000 in flight); two readers (two
 * other nodes) must receive all N in order.
 *
 * - pub/sub: PUBLISH to the room's channel, plus the XADD the room's history
 *   needs anyway; readers are subscribers. A reader that stalls is cut by
 *   Redis at its output-buffer limit and loses what was published meanwhile,
 *   so this design also needs gap detection and a refill from the stream.
 * - streams: the cluster's APPEND script (a line counter and XADD, trimmed);
 *   readers XREAD from their last id. Order and no loss come from the stream.
 *
 * Prints Redis's CPU per entry and the time until both readers had all.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { RedisClient, RedisSubscriber } from "../lib/cluster/redis.ts";
import { APPEND } from "../lib/cluster/scripts.ts";
import { MAX_HISTORY_ROOMS } from "../lib/store/store.ts";
import { RedisServer } from "../tests/_redis.ts";
import { processUsage } from "./proc.ts";

const flags = parseArgs({ args: Deno.args, options: { quick: { type: "boolean" } } }).values;
const N = flags.quick ? 20_000 : 200_000;
const IN_FLIGHT = 1000;
const PAYLOAD = "x".repeat(64);

async function measure(
  name: string,
  run: (redis: RedisServer, writer: RedisClient) => Promise<void>,
): Promise<void> {
  await using redis = await RedisServer.start();
  await using writer = await RedisClient.connect(redis.url);
  const before = (await processUsage(redis.pid)).cpuMs;
  const start = performance.now();
  await run(redis, writer);
  const ms = performance.now() - start;
  const cpu = (await processUsage(redis.pid)).cpuMs - before;
  console.log(
    `${name.padEnd(40)} ${(N / (ms / 1000)).toFixed(0).padStart(8)} entries/s, ` +
      `Redis ${(cpu * 1e6 / N).toFixed(0).padStart(5)} ns CPU per entry (two readers)`,
  );
}

/** Sends N commands made by `command(i)`, at most IN_FLIGHT unanswered. */
async function pump(command: (i: number) => Promise<unknown>[]) {
  let pending: Promise<unknown>[] = [];
  for (let i = 0; i < N; i++) {
    pending.push(...command(i));
    if (pending.length >= IN_FLIGHT) {
      await Promise.all(pending);
      pending = [];
    }
  }
  await Promise.all(pending);
}

await measure("pub/sub: PUBLISH + XADD (history)", async (redis, writer) => {
  const counts = [0, 0];
  const done = Promise.withResolvers<void>();
  const subscribers = await Promise.all([0, 1].map((r) =>
    RedisSubscriber.connect(redis.url, {
      onMessage: () => {
        if (++counts[r] === N && counts[1 - r] === N) done.resolve();
      },
    })
  ));
  await Promise.all(subscribers.map((s) => s.subscribe("room")));
  await pump((i) => [
    writer.command("PUBLISH", "room", `${i} ${PAYLOAD}`),
    writer.command("XADD", "history", "MAXLEN", "~", 10_000, "*", "x", `${i} ${PAYLOAD}`),
  ]);
  await done.promise;
  for (const s of subscribers) await s.close();
});

/** Reads stream `key` from its start until `N` entries came; resolves when they did. */
async function readAll(reader: RedisClient, key: string): Promise<void> {
  let cursor = "0-0";
  for (let count = 0; count < N;) {
    const reply = await reader.command(
      "XREAD",
      "COUNT",
      500,
      "BLOCK",
      1000,
      "STREAMS",
      key,
      cursor,
    );
    if (reply === null) continue;
    const entries = (reply as [Uint8Array, [Uint8Array, Uint8Array[]][]][])[0][1];
    count += entries.length;
    cursor = new TextDecoder().decode(entries[entries.length - 1][0]);
  }
}

// Streams keep N entries here, so that a reader that falls behind loses nothing and
// the figures compare the work only: trimmed entries are lost to a slow reader.
await measure("streams: APPEND script, XREAD readers", async (redis, writer) => {
  const sha = (await writer.string("SCRIPT", "LOAD", APPEND))!;
  const readers = await Promise.all([0, 1].map(() => RedisClient.connect(redis.url)));
  const reading = readers.map((reader) => readAll(reader, "room"));
  await pump((i) => [
    writer.command(
      "EVALSHA",
      sha,
      2,
      "room",
      "room:n",
      1,
      N,
      "charla:",
      "#room",
      MAX_HISTORY_ROOMS,
      "h",
      "m",
      "x",
      `${i} ${PAYLOAD}`,
    ),
  ]);
  await Promise.all(reading);
  for (const r of readers) await r.close();
});

await measure("streams: plain XADD, XREAD readers", async (redis, writer) => {
  const readers = await Promise.all([0, 1].map(() => RedisClient.connect(redis.url)));
  const reading = readers.map((reader) => readAll(reader, "room"));
  await pump((i) => [
    writer.command("XADD", "room", "MAXLEN", "~", N, "*", "x", `${i} ${PAYLOAD}`),
  ]);
  await Promise.all(reading);
  for (const r of readers) await r.close();
});
