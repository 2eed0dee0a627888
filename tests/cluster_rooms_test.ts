/**
 * The cluster's bound on rooms with history (scripts.ts APPEND), on a real
 * redis-server: the script with a bound of 4 rooms, and nodes with the real one.
 */

import assert from "node:assert/strict";
import { text } from "../lib/cluster/entries.ts";
import { RedisClient, RedisSubscriber } from "../lib/cluster/redis.ts";
import { APPEND } from "../lib/cluster/scripts.ts";
import { MAX_HISTORY_ROOMS } from "../lib/store/store.ts";
import { named, NodeProcess, seeJoins, startNode } from "./_cluster.ts";
import { within } from "./_helpers.ts";
import { RedisServer } from "./_redis.ts";

const MAX = 4;

Deno.test("APPEND keeps the history of the rooms appended to last, not of a room a node reads", async () => {
  await using redis = await RedisServer.start();
  const r = await RedisClient.connect(redis.url);
  try {
    const sha = text(await r.command("SCRIPT", "LOAD", APPEND));
    // One line in `room`, as a node appends it; returns the entry's id.
    const append = async (room: string) =>
      text(
        await r.command(
          "EVALSHA",
          sha,
          2,
          `t:room:${room}`,
          `t:room:${room}:n`,
          1,
          0,
          "t:",
          room,
          MAX,
          "h",
          "x",
        ),
      );
    // The rooms that have a stream and a counter, and those the bound counts.
    const kept = async () => {
      const streams = (await r.command("KEYS", "t:room:*") as Uint8Array[]).map(text).toSorted();
      const rooms = (await r.command("ZRANGE", "t:rooms", 0, -1) as Uint8Array[]).map(text);
      return { streams, rooms: rooms.toSorted() };
    };
    const both = (rooms: string[]) => ({
      streams: rooms.flatMap((room) => [`t:room:${room}`, `t:room:${room}:n`]).toSorted(),
      rooms: rooms.toSorted(),
    });
    // Node a reads #r1: someone is in it.
    await r.command("SADD", "t:nodes", "a");
    await r.command("HSET", "t:reading:a", "#r1", 1);
    for (let i = 0; i < MAX; i++) await append(`#r${i}`);
    assert.deepEqual(await kept(), both(["#r0", "#r1", "#r2", "#r3"]));
    // A fifth room: the one appended to longest ago loses its history.
    await append("#r4");
    assert.deepEqual(await kept(), both(["#r1", "#r2", "#r3", "#r4"]));
    // A sixth: the oldest is #r1, read by node a, which stays (as if new).
    await append("#r5");
    assert.deepEqual(await kept(), both(["#r1", "#r2", "#r3", "#r4", "#r5"]));
    // A seventh: two go, #r2 and #r3, down to the bound.
    await append("#r6");
    assert.deepEqual(await kept(), both(["#r1", "#r4", "#r5", "#r6"]));
    // A room that lost its history starts again from line 1; a kept one goes on.
    assert.match(await append("#r0"), /^1-/);
    assert.match(await append("#r1"), /^2-/);
  } finally {
    await r.close();
  }
});

/** Says a line in each of enough new rooms to pass the bound, through the script as nodes run it. */
async function passTheBound(url: string, tag: string): Promise<void> {
  const r = await RedisClient.connect(url);
  try {
    const sha = text(await r.command("SCRIPT", "LOAD", APPEND));
    const rooms = MAX_HISTORY_ROOMS + MAX_HISTORY_ROOMS / 16 + 1;
    for (let i = 0; i < rooms; i += 1_000) {
      await Promise.all(
        Array.from({ length: Math.min(1_000, rooms - i) }, (_, k) => {
          const room = `#${tag}${i + k}`;
          const key = `charla:room:${room}`;
          const args = [1, 0, "charla:", room, MAX_HISTORY_ROOMS, "h", "x"];
          return r.command("EVALSHA", sha, 2, key, `${key}:n`, ...args);
        }),
      );
    }
  } finally {
    await r.close();
  }
}

/**
 * Waits until `node` has told Redis it read `room` up to `line` (its
 * `reading` field), woken by Redis's keyspace events for that hash.
 */
async function untilRead(url: string, node: string, room: string, line: number): Promise<void> {
  const r = await RedisClient.connect(url);
  let changed = Promise.withResolvers<void>();
  const events = await RedisSubscriber.connect(url, { onMessage: () => changed.resolve() });
  try {
    await r.command("CONFIG", "SET", "notify-keyspace-events", "Kh");
    await events.subscribe(`__keyspace@0__:charla:reading:${node}`);
    while (text(await r.command("HGET", `charla:reading:${node}`, room)) !== String(line)) {
      await within(changed.promise, `${node} to report ${room} read up to ${line}`);
      changed = Promise.withResolvers<void>();
    }
  } finally {
    await events.close();
    await r.close();
  }
}

/**
 * Node a (here) and node b (a process); bea on b says 30 lines in #quiet,
 * with carl on a there; once b has reported reading them, it stops until a
 * takes it for dead, and carl leaves: nobody reads #quiet.
 */
async function quietRoomOfADeadNode(redis: RedisServer) {
  const a = await startNode(redis, "a", { nodeTimeout: 1000 });
  const b = await NodeProcess.start(["--cluster", redis.url, "--node", "b", "--node-timeout", "1"]);
  const carl = await named(a.port, "carl");
  const bea = await named(b.port, "bea");
  await carl.send("/join #quiet");
  await carl.lines.until(/^\* you are now in #quiet/);
  await a.cluster.following("#quiet");
  await bea.send("/join #quiet");
  await bea.lines.until(/^\* you are now in #quiet/);
  await seeJoins(carl, ["bea"]);
  for (let i = 0; i < 30; i++) await bea.send(`b${i}`);
  await carl.lines.until("<bea> b29");
  // Nothing b would still report once resumed: what it says then, it says anew.
  await untilRead(redis.url, "b", "#quiet", 30);
  b.signal("SIGSTOP");
  await carl.lines.until("* bea left (connection lost)");
  await carl.send("/part");
  await carl.lines.until(/^\* you are now in #lobby/);
  return {
    a,
    b,
    carl,
    bea,
    async [Symbol.asyncDispose]() {
      for (const it of [bea, carl, b, a]) await it[Symbol.asyncDispose]();
    },
  };
}

Deno.test("a node taken for dead while its room lost its history reads the room again from its start", async () => {
  await using redis = await RedisServer.start();
  await using nodes = await quietRoomOfADeadNode(redis);
  const { a, b, carl, bea } = nodes;
  // Nobody reads #quiet: past the bound, it is among the first rooms to go.
  await passTheBound(redis.url, "fill");
  const r = await RedisClient.connect(redis.url);
  assert.equal(await r.command("EXISTS", "charla:room:#quiet:n"), 0, "#quiet lost its history");
  await r.close();
  // #quiet starts again from line 1, with fewer lines than b had read of it.
  await carl.send("/join #quiet");
  for (let i = 0; i < 5; i++) await carl.send(`c${i}`);
  await a.cluster.store.flush();
  b.signal("SIGCONT");
  await b.until(/cluster: back in the cluster \(this node had been taken for dead/, "b's resync");
  const lines = await bea.lines.until("<carl> c4");
  assert.deepEqual(
    lines.filter((l) => l.startsWith("<carl>")),
    ["c0", "c1", "c2", "c3", "c4"].map((t) => `<carl> ${t}`),
  );
});

Deno.test("a node back from being taken for dead reads its rooms again: a quiet one keeps its history", async () => {
  await using redis = await RedisServer.start();
  await using nodes = await quietRoomOfADeadNode(redis);
  const { b, carl, bea } = nodes;
  b.signal("SIGCONT");
  await b.until(/cluster: back in the cluster \(this node had been taken for dead/, "b's resync");
  // Nothing is said in #quiet, but bea is in it again: b says it reads it.
  await passTheBound(redis.url, "fill");
  const r = await RedisClient.connect(redis.url);
  assert.equal(
    text(await r.command("GET", "charla:room:#quiet:n")),
    "30",
    "#quiet kept its history",
  );
  await r.close();
  await carl.send("/join #quiet", "d0");
  await bea.lines.until("<carl> d0");
});
