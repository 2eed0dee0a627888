// deno-lint-ignore-file no-console
/**
 * Throughput of charla's Redis client (lib/cluster/redis.ts) beside
 * `redis-benchmark`, the C tool that ships with Redis, against one fresh
 * redis-server on 127.0.0.1 and a free port. Run by hand; not part of
 * `deno task bench`:
 *
 * ```sh
 * deno run --allow-net --allow-run --allow-read --allow-write --allow-env bench/redis_bench.ts
 * deno run ... bench/redis_bench.ts --quick    # a tenth of the sizes
 * ```
 *
 * Scenarios, each with one client connection (`-c 1` for redis-benchmark):
 * - SET pipelined: N SETs of 64-byte values, W in flight (`-P W`).
 * - SET one at a time: each awaited before the next (`-P 1`): round trips.
 * - PUBLISH -> message: N 64-byte messages, W in flight, to one subscriber
 *   that checks their order; redis-benchmark publishes the same while
 *   `redis-cli subscribe` reads (its figure is the publish rate only).
 *
 * For each: operations per second, CPU per operation of this process and of
 * redis-server, and how many reads Redis made per 1,000 commands (fewer: the
 * client's writes were coalesced). Each run starts with FLUSHALL; our keys are
 * `key:<i>`, redis-benchmark's random among as many (`-r`).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { RedisClient, RedisSubscriber } from "../lib/cluster/redis.ts";
import { RedisServer } from "../tests/_redis.ts";
import { processUsage, selfCpuMs } from "./proc.ts";

const flags = parseArgs({ args: Deno.args, options: { quick: { type: "boolean" } } });
const scale = flags.values.quick ? 0.1 : 1;
const PAYLOAD = "x".repeat(64);
/** redis-benchmark's SET with 64-byte values over `n` keys, as ours: without -r it sets one key. */
const SET_ARGS = (n: number) => ["-t", "set", "-d", "64", "-r", String(n)];

interface Row {
  scenario: string;
  who: string;
  opsPerSecond: number;
  clientNsPerOp?: number;
  redisNsPerOp: number;
  readsPer1000?: number;
}

/** Reads processed by Redis so far (INFO stats). */
async function redisReads(client: RedisClient): Promise<number> {
  const info = (await client.string("INFO", "stats"))!;
  return Number(/total_reads_processed:(\d+)/.exec(info)![1]);
}

/** Measures `run` (which performs `ops` operations): wall time, our CPU, Redis's CPU. */
async function measure(
  scenario: string,
  ops: number,
  redis: RedisServer,
  admin: RedisClient,
  run: () => Promise<void>,
): Promise<Row> {
  // Every run starts from an empty key space, so none pays for another's keys.
  await admin.command("FLUSHALL");
  const reads0 = await redisReads(admin);
  const redisCpu0 = (await processUsage(redis.pid)).cpuMs;
  const cpu0 = selfCpuMs();
  const t0 = performance.now();
  await run();
  const seconds = (performance.now() - t0) / 1000;
  const cpu = selfCpuMs() - cpu0;
  const redisCpu = (await processUsage(redis.pid)).cpuMs - redisCpu0;
  // The two INFO calls are themselves reads: negligible against thousands.
  const reads = await redisReads(admin) - reads0;
  return {
    scenario,
    who: "charla",
    opsPerSecond: ops / seconds,
    clientNsPerOp: cpu * 1e6 / ops,
    redisNsPerOp: redisCpu * 1e6 / ops,
    readsPer1000: reads * 1000 / ops,
  };
}

/** Runs redis-benchmark with `args`; returns its requests per second, and Redis's CPU per op. */
async function redisBenchmark(
  scenario: string,
  redis: RedisServer,
  admin: RedisClient,
  ops: number,
  args: string[],
): Promise<Row> {
  // Every run starts from an empty key space, so none pays for another's keys.
  await admin.command("FLUSHALL");
  const reads0 = await redisReads(admin);
  const redisCpu0 = (await processUsage(redis.pid)).cpuMs;
  const out = await new Deno.Command("redis-benchmark", {
    args: [
      "-h",
      "127.0.0.1",
      "-p",
      String(redis.port),
      "-c",
      "1",
      "-n",
      String(ops),
      "--csv",
      ...args,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const redisCpu = (await processUsage(redis.pid)).cpuMs - redisCpu0;
  const reads = await redisReads(admin) - reads0;
  const text = new TextDecoder().decode(out.stdout);
  // CSV: a header, then "test","rps",...
  const line = text.trim().split("\n").find((l) => !l.startsWith('"test"'));
  const rps = Number(line?.split(",")[1]?.replaceAll('"', ""));
  if (!out.success || !Number.isFinite(rps)) {
    throw new Error(`redis-benchmark failed: ${text}${new TextDecoder().decode(out.stderr)}`);
  }
  return {
    scenario,
    who: "redis-benchmark",
    opsPerSecond: rps,
    redisNsPerOp: redisCpu * 1e6 / ops,
    readsPer1000: reads * 1000 / ops,
  };
}

async function setPipelined(client: RedisClient, n: number, window: number): Promise<void> {
  for (let done = 0; done < n; done += window) {
    const replies: Promise<unknown>[] = [];
    for (let i = done; i < Math.min(n, done + window); i++) {
      replies.push(client.command("SET", `key:${i}`, PAYLOAD));
    }
    await Promise.all(replies);
  }
}

async function setOneByOne(client: RedisClient, n: number): Promise<void> {
  for (let i = 0; i < n; i++) await client.command("SET", `key:${i}`, PAYLOAD);
}

async function publishToSubscriber(url: string, client: RedisClient, n: number, window: number) {
  let received = 0;
  let outOfOrder = 0;
  const all = Promise.withResolvers<void>();
  const subscriber = await RedisSubscriber.connect(url, {
    onMessage: (message) => {
      // Payloads end in their index: check the order while counting.
      const p = message.payload;
      let index = 0;
      for (let i = 65; i < p.length; i++) index = index * 10 + p[i] - 48;
      if (index !== received) outOfOrder++;
      if (++received === n) all.resolve();
    },
  });
  await subscriber.subscribe("bench");
  return {
    run: async () => {
      for (let done = 0; done < n; done += window) {
        const replies: Promise<unknown>[] = [];
        for (let i = done; i < Math.min(n, done + window); i++) {
          replies.push(client.command("PUBLISH", "bench", `${PAYLOAD}:${i}`));
        }
        await Promise.all(replies);
      }
      await all.promise;
    },
    check: () => {
      if (received !== n || outOfOrder !== 0) {
        throw new Error(`PUBLISH: received ${received} of ${n}, ${outOfOrder} out of order`);
      }
    },
    close: () => subscriber.close(),
  };
}

async function main(): Promise<void> {
  const rows: Row[] = [];
  await using redis = await RedisServer.start();
  await using admin = await RedisClient.connect(redis.url);
  await using client = await RedisClient.connect(redis.url, { maxPending: 1_000_000 });
  const n = Math.round(300_000 * scale);
  const sequential = Math.round(20_000 * scale);

  // Warm up the JIT, the heap and Redis's key space.
  await setPipelined(client, n, 1000);

  for (const window of [1000, 10_000]) {
    const scenario = `SET pipelined, ${window.toLocaleString("en")} in flight`;
    rows.push(await measure(scenario, n, redis, admin, () => setPipelined(client, n, window)));
    rows.push(
      await redisBenchmark(scenario, redis, admin, n, [...SET_ARGS(n), "-P", String(window)]),
    );
  }
  {
    const scenario = "SET one at a time";
    rows.push(
      await measure(scenario, sequential, redis, admin, () => setOneByOne(client, sequential)),
    );
    rows.push(
      await redisBenchmark(scenario, redis, admin, sequential, [...SET_ARGS(n), "-P", "1"]),
    );
  }
  {
    const published = Math.round(200_000 * scale);
    const scenario = "PUBLISH -> message, 1,000 in flight";
    const pub = await publishToSubscriber(redis.url, client, published, 1000);
    rows.push(await measure(scenario, published, redis, admin, pub.run));
    pub.check();
    await pub.close();
    // A C subscriber reading the same channel while redis-benchmark publishes.
    const cli = new Deno.Command("redis-cli", {
      args: ["-p", String(redis.port), "subscribe", "bench"],
      stdout: "null",
      stderr: "null",
    }).spawn();
    // Wait until Redis counts the subscriber, by asking (each ask a round trip).
    while ((await admin.command("PUBSUB", "NUMSUB", "bench") as [unknown, number])[1] !== 1);
    rows.push(
      await redisBenchmark(scenario, redis, admin, published, [
        "-P",
        "1000",
        "PUBLISH",
        "bench",
        PAYLOAD,
      ]),
    );
    cli.kill("SIGTERM");
    await cli.status;
  }

  const fmt = (v: number | undefined, digits = 0) =>
    v === undefined ? "" : v.toLocaleString("en", { maximumFractionDigits: digits });
  console.log(
    `| scenario | client | ops/s | client CPU ns/op | redis-server CPU ns/op | Redis reads per 1,000 commands |`,
  );
  console.log("| --- | --- | ---: | ---: | ---: | ---: |");
  for (const row of rows) {
    console.log(
      `| ${row.scenario} | ${row.who} | ${fmt(row.opsPerSecond)} | ${fmt(row.clientNsPerOp)} | ` +
        `${fmt(row.redisNsPerOp)} | ${fmt(row.readsPer1000, 1)} |`,
    );
  }
}

if (import.meta.main) await main();
