/**
 * The cluster's store (lib/cluster/redis_store.ts) against a real
 * redis-server: what it keeps in Redis stays bounded whatever people do.
 */

import assert from "node:assert/strict";
import { within } from "./_helpers.ts";
import { RedisServer } from "./_redis.ts";
import { ClusterKeys } from "../lib/cluster/entries.ts";
import { RedisClient } from "../lib/cluster/redis.ts";
import { RedisStore } from "../lib/cluster/redis_store.ts";

Deno.test("RedisStore keeps the topics set most recently, at most a sixteenth over its bound", async () => {
  // Anyone may make a room and set its topic; a room keeps it when it empties.
  await using redis = await RedisServer.start();
  await using client = await RedisClient.connect(redis.url);
  const keys = new ClusterKeys("t:");
  const store = new RedisStore(client, { keys, maxTopics: 32 });
  for (let i = 0; i < 100; i++) {
    store.setTopic({ room: `#r${i}`, topic: `tema ${i}`, by: "ana", time: 1_000 + i });
  }
  // Set again, so set most recently: it stays though it was the first.
  store.setTopic({ room: "#R0", topic: "otra vez", by: "bea", time: 2_000 });
  await within(store.flush(), "the writes");
  const kept = await client.integer("HLEN", keys.topics);
  assert.ok(kept >= 32 && kept <= 34, `${kept} topics in Redis`);
  assert.equal(await client.integer("ZCARD", keys.topicTimes), kept);
  const topics = await store.topics();
  const rooms = new Set(topics.map((t) => t.room));
  assert.equal(topics.length, 32, "the 101st topic made 35: back to 32");
  for (let i = 69; i < 100; i++) assert.ok(rooms.has(`#r${i}`), `#r${i} is kept`);
  assert.deepEqual(topics.find((t) => t.room === "#R0")?.topic, "otra vez");
  assert.ok(!rooms.has("#r1") && !rooms.has("#r68"), "the oldest went");
});

Deno.test("RedisStore trims the topics a flood left before they were bounded, when it loads them", async () => {
  // Topics written by an earlier version have no time kept: they go first,
  // more than Lua's unpack() takes at once.
  await using redis = await RedisServer.start();
  await using client = await RedisClient.connect(redis.url);
  const keys = new ClusterKeys("t:");
  const writes: Promise<unknown>[] = [];
  for (let i = 0; i < 5_000; i++) {
    const topic = { room: `#old${i}`, topic: `viejo ${i}`, by: "ana", time: i };
    writes.push(client.command("HSET", keys.topics, `#old${i}`, JSON.stringify(topic)));
  }
  await within(Promise.all(writes), "5,000 topics");
  const store = new RedisStore(client, { keys, maxTopics: 100 });
  store.setTopic({ room: "#nuevo", topic: "hola", by: "bea", time: 10_000 });
  const topics = await within(store.topics(), "the topics");
  assert.equal(topics.length, 100);
  assert.equal(await client.integer("HLEN", keys.topics), 100);
  assert.ok(topics.some((t) => t.room === "#nuevo"), "the one set with its time is kept");
});
