/**
 * The Redis client against a real redis-server (Debian's, 7.0) on 127.0.0.1,
 * and, for what no well-behaved server does (oversized and non-RESP replies,
 * silence), against tiny TCP servers of our own.
 */

import assert from "node:assert/strict";
import { within } from "./_helpers.ts";
import { Recorder, RedisServer } from "./_redis.ts";
import {
  RedisClient,
  type RedisClientOptions,
  RedisConnectionError,
  type RedisEvent,
  type RedisMessage,
  RedisSubscriber,
} from "../lib/cluster/redis.ts";
import {
  decodeReply,
  PushReply,
  RedisError,
  RedisProtocolError,
  ReplyParser,
} from "../lib/cluster/resp.ts";

const encoder = new TextEncoder();
const bytes = (s: string) => encoder.encode(s);
/** Every byte value, CR LF and NUL among them, and a stray `$` header inside. */
const BINARY = Uint8Array.from([...Array(256).keys(), 13, 10, 0, ...bytes("$5\r\n*-1\r\n")]);

/** Reconnecting fast, so tests of it are quick. */
const FAST: RedisClientOptions = { reconnectDelay: 10, maxReconnectDelay: 100 };

Deno.test("RedisClient pipelines 10,000 commands and gets every reply in order", async () => {
  await using redis = await RedisServer.start();
  await using client = await RedisClient.connect(redis.url);
  const replies: Promise<unknown>[] = [];
  for (let i = 0; i < 10_000; i++) {
    // Interleaved kinds, sizes crossing read boundaries: a reply matched to the
    // wrong command shows as a wrong value, not just a wrong count.
    replies.push(
      i % 3 === 0
        ? client.command("INCR", "counter")
        : client.command("ECHO", `${i}:${"x".repeat(i % 200)}`),
    );
  }
  const results = await within(Promise.all(replies), "10,000 replies");
  let counter = 0;
  for (let i = 0; i < 10_000; i++) {
    const expected = i % 3 === 0 ? ++counter : bytes(`${i}:${"x".repeat(i % 200)}`);
    assert.deepEqual(results[i], expected, `reply ${i}`);
  }
  assert.equal(await client.string("GET", "counter"), "3334");
});

Deno.test("RedisClient round-trips binary keys and values byte for byte", async () => {
  await using redis = await RedisServer.start();
  await using client = await RedisClient.connect(redis.url);
  assert.equal(await client.command("SET", BINARY, BINARY), "OK");
  assert.deepEqual(await client.command("GET", BINARY), BINARY);
  const big = new Uint8Array(3 * 1024 * 1024 + 7).map((_, i) => (i * 31) & 0xff);
  await client.command("SET", "big", big);
  assert.deepEqual(await client.command("GET", "big"), big);
  assert.equal(await client.integer("STRLEN", "big"), big.length);
  // Text in any script arrives as it was sent.
  await client.command("SET", "texto", "¡Hola! 你好 👋🏽");
  assert.equal(await client.string("GET", "texto"), "¡Hola! 你好 👋🏽");
});

Deno.test("RedisClient gives the reply shapes of the commands the cluster uses", async () => {
  await using redis = await RedisServer.start();
  await using client = await RedisClient.connect(redis.url, { name: "charla-test" });

  // Strings, expiry, counters.
  assert.equal(await client.command("SET", "lock", "node-1", "NX", "PX", 60_000), "OK");
  assert.equal(await client.command("SET", "lock", "node-2", "NX", "PX", 60_000), null);
  assert.equal(await client.string("GET", "lock"), "node-1");
  assert.equal(await client.string("GET", "missing"), null);
  assert.ok((await client.integer("PTTL", "lock")) > 59_000);
  assert.equal(await client.integer("EXPIRE", "lock", 100), 1);
  assert.equal(await client.integer("PEXPIRE", "missing", 100), 0);
  assert.equal(await client.integer("DEL", "lock", "missing"), 1);
  assert.equal(await client.integer("INCR", "n"), 1);
  assert.equal(await client.integer("INCRBY", "n", 41), 42);
  assert.equal(await client.command("INCRBY", "n", 2n ** 62n), 2n ** 62n + 42n);

  // Hashes and sets.
  assert.equal(await client.integer("HSET", "h", "topic", "hola", "mode", BINARY), 2);
  // A flat array of field, value; in no particular order once the hash is big.
  const flat = await client.command("HGETALL", "h") as Uint8Array[];
  assert.equal(flat.length, 4);
  const fields = new Map(
    [0, 2].map((i) => [new TextDecoder().decode(flat[i]), flat[i + 1]]),
  );
  assert.deepEqual(fields, new Map([["topic", bytes("hola")], ["mode", BINARY]]));
  assert.equal(await client.integer("HDEL", "h", "mode", "nope"), 1);
  assert.deepEqual(await client.text("HGETALL", "h"), ["topic", "hola"]);
  assert.equal(await client.integer("SADD", "s", "ana", "bea", "ana"), 2);
  assert.equal(await client.integer("SREM", "s", "bea"), 1);
  assert.deepEqual(await client.text("SMEMBERS", "s"), ["ana"]);
  assert.deepEqual(await client.command("SMEMBERS", "nothing"), []);

  // Streams: ids, nested arrays, null when there is nothing.
  const id1 = await client.string("XADD", "st", "MAXLEN", "~", 1000, "*", "text", "uno");
  const id2 = await client.string("XADD", "st", "MAXLEN", "~", 1000, "*", "text", BINARY);
  assert.match(id1!, /^\d+-\d+$/);
  assert.deepEqual(await client.command("XRANGE", "st", "-", "+"), [
    [bytes(id1!), [bytes("text"), bytes("uno")]],
    [bytes(id2!), [bytes("text"), BINARY]],
  ]);
  assert.deepEqual(await client.text("XREVRANGE", "st", "+", "-", "COUNT", 1), [
    [id2, ["text", decodeReply(BINARY)]],
  ]);
  assert.deepEqual(await client.text("XREAD", "COUNT", 10, "STREAMS", "st", id1!), [
    ["st", [[id2, ["text", decodeReply(BINARY)]]]],
  ]);
  assert.equal(await client.command("XREAD", "COUNT", 10, "STREAMS", "st", id2!), null);

  // Scripts: nested tables, nil inside them, errors as replies and as values.
  const script =
    "return {KEYS[1], tonumber(ARGV[1]) + 1, {'a', false}, redis.call('HGET', 'h', 'topic')}";
  assert.deepEqual(await client.text("EVAL", script, 1, "k", 41), ["k", 42, ["a", null], "hola"]);
  const sha = await client.string("SCRIPT", "LOAD", script);
  assert.deepEqual(await client.text("EVALSHA", sha!, 1, "k", 1), ["k", 2, ["a", null], "hola"]);
  await assert.rejects(
    client.command("EVALSHA", "0".repeat(40), 0),
    (e: RedisError) => e instanceof RedisError && e.code === "NOSCRIPT",
  );
  const [nested] = await client.command("EVAL", "return {redis.error_reply('NOPE no')}", 0) as [
    RedisError,
  ];
  assert.ok(nested instanceof RedisError);
  assert.equal(nested.message, "NOPE no");

  // Pub/sub and connection commands.
  assert.equal(await client.integer("PUBLISH", "nobody", "hola"), 0);
  assert.equal(await client.command("PING"), "PONG");
  assert.equal(await client.string("CLIENT", "GETNAME"), "charla-test");
  assert.equal(await client.command("CLIENT", "SETNAME", "renamed"), "OK");
  assert.match((await client.string("CLIENT", "INFO"))!, / name=renamed /);

  // An error reply rejects its command only; the next one works.
  await assert.rejects(
    client.command("INCR", "h"),
    (e: RedisError) => e instanceof RedisError && e.code === "WRONGTYPE",
  );
  await assert.rejects(client.integer("GET", "missing"), /Expected an integer reply to GET/);
  await assert.rejects(client.command("SET", "k", NaN), TypeError);
  assert.equal(await client.command("PING"), "PONG");
});

Deno.test("RedisClient with protocol 3 reads maps, sets, doubles and pushes", async () => {
  await using redis = await RedisServer.start();
  const pushes = new Recorder<PushReply>();
  await using client = await RedisClient.connect(redis.url, { protocol: 3, onPush: pushes.add });
  await using other = await RedisClient.connect(redis.url);
  await client.command("HSET", "h", "a", "1", "b", "2");
  const map = await client.text("HGETALL", "h");
  assert.deepEqual(map, new Map([["a", "1"], ["b", "2"]]));
  await client.command("SADD", "s", "x");
  assert.deepEqual(await client.text("SMEMBERS", "s"), new Set(["x"]));
  await client.command("ZADD", "z", "2.5", "m");
  assert.equal(await client.command("ZSCORE", "z", "m"), 2.5);
  assert.equal(await client.command("GET", "missing"), null);

  // Client-side caching: Redis pushes an invalidation, which answers no command.
  assert.equal(await client.command("CLIENT", "TRACKING", "ON"), "OK");
  assert.deepEqual(await client.command("GET", "tracked"), null);
  await other.command("SET", "tracked", "changed");
  await pushes.until((p) => p.length === 1, "an invalidation push");
  assert.deepEqual(decodeReply(pushes.items[0]), ["invalidate", ["tracked"]]);
  assert.equal(await client.string("GET", "tracked"), "changed");
});

Deno.test("RedisClient runs a blocking XREAD on a connection of its own", async () => {
  await using redis = await RedisServer.start();
  await using client = await RedisClient.connect(redis.url);
  await using blocking = await RedisClient.connect(redis.url);
  const read = blocking.text("XREAD", "BLOCK", 10_000, "STREAMS", "events", "$");
  // The read is blocked once Redis says so; then the XADD wakes it.
  await waitFor(
    async () => /blocked_clients:1/.test((await client.string("INFO", "clients"))!),
    "XREAD to block",
  );
  const id = await client.string("XADD", "events", "*", "text", "hola");
  assert.deepEqual(await within(read, "the XREAD"), [["events", [[id, ["text", "hola"]]]]]);
});

Deno.test("RedisSubscriber delivers 10,000 messages in order, binary payloads intact", async () => {
  await using redis = await RedisServer.start();
  const messages = new Recorder<RedisMessage>();
  await using subscriber = await RedisSubscriber.connect(redis.url, { onMessage: messages.add });
  await using client = await RedisClient.connect(redis.url);
  await subscriber.subscribe("room:1", BINARY);
  await subscriber.psubscribe("room:*");
  const sent: Promise<number>[] = [];
  for (let i = 0; i < 10_000; i++) {
    const payload = i % 2 ? bytes(`message ${i}`) : Uint8Array.from([...BINARY, ...bytes(`${i}`)]);
    sent.push(client.integer("PUBLISH", "room:1", payload));
  }
  sent.push(client.integer("PUBLISH", BINARY, BINARY));
  // room:1 matches the channel and the pattern: two receivers each.
  const receivers = await Promise.all(sent);
  assert.deepEqual(receivers.slice(0, 3), [2, 2, 2]);
  assert.equal(receivers.at(-1), 1);
  await messages.until((m) => m.length === 20_001, "20,001 messages");
  // Redis sends a PUBLISH's channel delivery before its pattern delivery.
  for (let i = 0; i < 10_000; i++) {
    const payload = i % 2 ? bytes(`message ${i}`) : Uint8Array.from([...BINARY, ...bytes(`${i}`)]);
    const [direct, matched] = [messages.items[2 * i], messages.items[2 * i + 1]];
    assert.deepEqual(direct.payload, payload, `message ${i}`);
    assert.equal(direct.pattern, null);
    assert.equal(direct.channelText, "room:1");
    assert.deepEqual(matched.payload, payload, `pattern message ${i}`);
    assert.equal(matched.pattern && new TextDecoder().decode(matched.pattern), "room:*");
  }
  const last = messages.items[20_000];
  assert.deepEqual([last.channel, last.payload], [BINARY, BINARY]);

  // After unsubscribing nothing is delivered: Redis counts no receiver.
  await subscriber.unsubscribe("room:1");
  await subscriber.punsubscribe();
  assert.equal(await client.integer("PUBLISH", "room:1", "gone"), 0);
  assert.equal(await client.integer("PUBLISH", BINARY, "still"), 1);
  await subscriber.unsubscribe();
  assert.equal(await client.integer("PUBLISH", BINARY, "gone"), 0);
  await subscriber.unsubscribe(); // nothing left: resolves without asking Redis
  assert.equal(messages.items.length, 20_002);
});

/** Events of a client, by type, as text for assertions. */
function types(events: RedisEvent[]): string[] {
  return events.map((e) => e.type);
}

Deno.test(
  "RedisClient and RedisSubscriber survive Redis killed and restarted on the same port",
  async () => {
    await using redis = await RedisServer.start();
    const clientEvents = new Recorder<RedisEvent>();
    const subscriberEvents = new Recorder<RedisEvent>();
    const messages = new Recorder<RedisMessage | string>();
    await using client = await RedisClient.connect(redis.url, {
      ...FAST,
      onEvent: clientEvents.add,
    });
    await using subscriber = await RedisSubscriber.connect(redis.url, {
      ...FAST,
      onEvent: (event) => {
        subscriberEvents.add(event);
        messages.add(event.type); // where events fall among messages
      },
      onMessage: messages.add,
    });
    await subscriber.subscribe("room:1");
    await subscriber.psubscribe("user:*");
    await client.command("PUBLISH", "room:1", "before");
    await messages.until((m) => m.length === 1, "the message before the restart");

    // Commands in flight: a BLPOP that Redis holds, and a PING queued behind it.
    const inFlight = Promise.allSettled([
      client.command("BLPOP", "nothing", 0),
      client.command("PING"),
    ]);
    await using watcher = await RedisClient.connect(redis.url);
    await waitFor(
      async () => /blocked_clients:1/.test((await watcher.string("INFO", "clients"))!),
      "BLPOP to block",
    );
    await watcher.close();

    await redis.kill("SIGKILL");
    for (const result of await within(inFlight, "the in-flight commands to reject")) {
      assert.equal(result.status, "rejected");
      assert.ok(result.reason instanceof RedisConnectionError);
      assert.match(result.reason.message, /may or may not have run/);
    }
    await clientEvents.until((e) => e[0]?.type === "disconnected", "the client's disconnected");
    await subscriberEvents.until((e) => e[0]?.type === "disconnected", "the subscriber's");
    // While Redis is down, commands fail at once, saying so.
    await assert.rejects(
      client.command("PING"),
      (e: Error) => e instanceof RedisConnectionError && /Not connected to redis/.test(e.message),
    );
    // At least one attempt fails (refused) before Redis is back.
    await clientEvents.until(
      (e) => e.filter((x) => x.type === "reconnecting").length >= 2,
      "a failed reconnection attempt",
    );

    await redis.restart();
    await clientEvents.until((e) => e.at(-1)?.type === "reconnected", "the client's reconnected");
    await subscriberEvents.until((e) => e.at(-1)?.type === "reconnected", "the subscriber's");
    assert.deepEqual(
      new Set(types(clientEvents.items)),
      new Set(["disconnected", "reconnecting", "reconnected"]),
    );
    const reconnecting = clientEvents.items.filter((e) => e.type === "reconnecting");
    assert.ok(
      reconnecting.every((e, i) => e.type === "reconnecting" && e.attempt === i + 1),
      "attempts are numbered from 1",
    );

    // The subscriber is subscribed again to the channel and the pattern.
    assert.equal(await client.command("PING"), "PONG");
    assert.equal(await client.integer("PUBLISH", "room:1", "after"), 1);
    assert.equal(await client.integer("PUBLISH", "user:ana", "for ana"), 1);
    await messages.until(
      (m) => m.some((x) => typeof x !== "string" && x.text === "for ana"),
      "the messages after the restart",
    );
    const seen = messages.items.map((m) => typeof m === "string" ? m : m.text);
    const after = seen.indexOf("reconnected");
    assert.deepEqual(seen.slice(0, 2), ["before", "disconnected"]);
    assert.deepEqual(seen.slice(after), ["reconnected", "after", "for ana"]);
  },
);

Deno.test("RedisSubscriber reconnects after Redis cuts it for its output buffer", async () => {
  // What a subscriber that falls behind meets: Redis closes it, and what was
  // published meanwhile is lost. The cluster resyncs on "reconnected".
  await using redis = await RedisServer.start({
    args: ["--client-output-buffer-limit", "pubsub 64kb 0 0"],
  });
  const events = new Recorder<RedisEvent>();
  const messages = new Recorder<RedisMessage>();
  await using subscriber = await RedisSubscriber.connect(redis.url, {
    ...FAST,
    onEvent: events.add,
    onMessage: messages.add,
  });
  await using client = await RedisClient.connect(redis.url);
  await subscriber.subscribe("flood");
  // One script publishes 1 MiB at once: more than the limit before anyone can read.
  await client.command(
    "EVAL",
    "for i = 1, 1024 do redis.call('PUBLISH', 'flood', string.rep('x', 1024)) end",
    0,
  );
  await redis.waitForLog(/scheduled to be closed ASAP for overcoming of output buffer/, "the cut");
  await events.until((e) => e.some((x) => x.type === "reconnected"), "the reconnection");
  assert.equal(events.items[0].type, "disconnected");
  assert.equal(messages.items.length, 0);
  assert.equal(await client.integer("PUBLISH", "flood", "small"), 1);
  await messages.until((m) => m.length === 1, "a message after the cut");
  assert.equal(messages.items[0].text, "small");
});

Deno.test("RedisClient authenticates with requirepass, and says why when it cannot", async () => {
  await using redis = await RedisServer.start({ args: ["--requirepass", "s3cret!"] });
  const port = redis.port;
  {
    await using inUrl = await RedisClient.connect(`redis://:s3cret%21@127.0.0.1:${port}`);
    assert.equal(await inUrl.command("PING"), "PONG");
    // An ACL user too, with its own password.
    await inUrl.command("ACL", "SETUSER", "ana", "on", ">pw", "~*", "&*", "+@all");
  }
  {
    await using inOption = await RedisClient.connect(redis.url, { password: "s3cret!" });
    assert.equal(await inOption.command("PING"), "PONG");
  }
  {
    await using asUser = await RedisClient.connect(`redis://ana:pw@127.0.0.1:${port}`);
    assert.equal(await asUser.string("ACL", "WHOAMI"), "ana");
  }
  await assert.rejects(
    RedisClient.connect(redis.url, { password: "wrong" }),
    (e: Error) =>
      e instanceof RedisError && e.code === "WRONGPASS" &&
      e.message.startsWith(`Redis at 127.0.0.1:${port} refused the credentials: WRONGPASS`) &&
      e.message.endsWith("check the user name and password"),
  );
  {
    // RESP3 authenticates within HELLO.
    await using resp3 = await RedisClient.connect(redis.url, { password: "s3cret!", protocol: 3 });
    assert.equal(await resp3.command("PING"), "PONG");
  }
  await assert.rejects(
    RedisClient.connect(redis.url, { password: "wrong", protocol: 3 }),
    (e: Error) =>
      e instanceof RedisError && e.code === "WRONGPASS" &&
      /refused HELLO 3: WRONGPASS/.test(e.message),
  );
  await assert.rejects(
    RedisClient.connect(redis.url),
    (e: Error) =>
      e instanceof RedisError && e.code === "NOAUTH" &&
      /requires a password .*give one in the URL or the password option$/.test(e.message),
  );
  await assert.rejects(
    RedisSubscriber.connect(redis.url, { password: "wrong", onMessage: () => {} }),
    (e: Error) => e instanceof RedisError && e.code === "WRONGPASS",
  );
  // The password is never in a message about a bad URL.
  await assert.rejects(
    RedisClient.connect(`redis://:s3cret@127.0.0.1:${port}/x`),
    (e: Error) => e instanceof TypeError && !e.message.includes("s3cret"),
  );
});

Deno.test("RedisClient selects the database from the URL path", async () => {
  await using redis = await RedisServer.start();
  await using db3 = await RedisClient.connect(`${redis.url}/3`);
  await using db0 = await RedisClient.connect(redis.url);
  await db3.command("SET", "where", "three");
  assert.equal(await db3.string("GET", "where"), "three");
  assert.equal(await db0.string("GET", "where"), null);
  await assert.rejects(
    RedisClient.connect(`${redis.url}/99`),
    (e: Error) =>
      e instanceof RedisError && /refused SELECT 99: ERR DB index is out of range/.test(e.message),
  );
});

Deno.test("RedisClient speaks TLS to rediss:// and checks the certificate", async () => {
  await using redis = await RedisServer.start({ tls: true });
  await using client = await RedisClient.connect(redis.tlsUrl, { caCerts: [RedisServer.caCert()] });
  assert.equal(
    await client.command("ECHO", BINARY).then((r) => (r as Uint8Array).length),
    BINARY.length,
  );
  await assert.rejects(
    RedisClient.connect(redis.tlsUrl),
    (e: Error) =>
      e instanceof RedisConnectionError &&
      /TLS certificate not accepted .*is caCerts the authority that signed it\?$/.test(e.message),
  );
  // TLS to the plain port: Redis waits for the end of a line that never comes.
  await assert.rejects(
    RedisClient.connect(`rediss://127.0.0.1:${redis.port}`, {
      caCerts: [RedisServer.caCert()],
      connectTimeout: 300,
    }),
    (e: Error) =>
      e instanceof RedisConnectionError &&
      /no answer within 0.3 s; does the server speak TLS on this port\?$/.test(e.message),
  );
});

Deno.test("RedisClient.connect() says when nothing listens", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  await assert.rejects(
    RedisClient.connect(`redis://127.0.0.1:${port}`),
    (e: Error) =>
      e instanceof RedisConnectionError &&
      e.message ===
        `Cannot connect to redis at 127.0.0.1:${port}: connection refused; is redis-server running there?`,
  );
});

/** What a fake server does about one command: reply with these bytes, say nothing, or hang up. */
type Answer = string | Uint8Array | null | "close";

/**
 * A TCP server of our own on 127.0.0.1, for what Redis never does: it reads
 * commands (RESP arrays, read with our own parser) on each connection it
 * accepts, numbered from 1, and does what `answer` says. `ended` records the
 * numbers of the connections that ended.
 */
async function withFakeServer(
  answer: (command: string, connection: number) => Answer,
  run: (url: string, ended: Recorder<number>) => Promise<void>,
): Promise<void> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const ended = new Recorder<number>();
  const connections: Promise<void>[] = [];
  const serve = async (conn: Deno.Conn, number: number) => {
    const parser = new ReplyParser();
    const buffer = new Uint8Array(64 * 1024);
    const answers: Answer[] = [];
    try {
      reading: while (true) {
        const n = await conn.read(buffer);
        if (n === null) break;
        parser.push(buffer.subarray(0, n), (command) => {
          answers.push(answer((decodeReply(command) as string[]).join(" "), number));
        });
        for (const reply of answers.splice(0)) {
          if (reply === "close") break reading;
          if (reply !== null) await conn.write(typeof reply === "string" ? bytes(reply) : reply);
        }
      }
    } catch (error) {
      if (
        !(error instanceof Deno.errors.ConnectionReset || error instanceof Deno.errors.BrokenPipe)
      ) {
        throw error;
      }
    } finally {
      conn.close();
      ended.add(number);
    }
  };
  const accepting = (async () => {
    for (let number = 1;; number++) {
      let conn: Deno.Conn;
      try {
        conn = await listener.accept();
      } catch {
        return; // the listener was closed: the test is over
      }
      connections.push(serve(conn, number));
    }
  })();
  try {
    await run(`redis://127.0.0.1:${listener.addr.port}`, ended);
  } finally {
    listener.close();
    await accepting;
    await Promise.all(connections);
  }
}

Deno.test("RedisClient closes the connection on a bulk string over maxReply", async () => {
  await withFakeServer(
    // The handshake PING, then a header promising more than the limit.
    (command) => command === "PING" ? "+PONG\r\n" : "$2000000\r\nabc",
    async (url, ended) => {
      const events = new Recorder<RedisEvent>();
      const client = await RedisClient.connect(url, {
        maxReply: 1024,
        reconnect: false,
        onEvent: events.add,
      });
      await assert.rejects(
        within(client.command("GET", "k"), "the rejection"),
        (e: Error) =>
          e instanceof RedisConnectionError && e.cause instanceof RedisProtocolError &&
          /sent a reply that cannot be read \(Reply longer than the limit of 1024 bytes\)/.test(
            e.message,
          ),
      );
      await ended.until((e) => e.length === 1, "the client to close the connection");
      assert.deepEqual(types(events.items), ["disconnected"]);
      assert.equal(client.connected, false);
      await assert.rejects(client.command("PING"), /Not connected .*reconnecting is off/);
      await client.close();
    },
  );
});

Deno.test("RedisClient.connect() refuses a peer that does not speak RESP", async () => {
  await withFakeServer(
    () => "HTTP/1.1 400 Bad Request\r\n\r\n",
    async (url) => {
      await assert.rejects(
        RedisClient.connect(url),
        (e: Error) =>
          e instanceof RedisConnectionError && /is the peer a Redis server\?/.test(e.message),
      );
    },
  );
});

Deno.test("RedisClient.connect() gives up on a server that never answers", async () => {
  await withFakeServer(
    () => null,
    async (url) => {
      await assert.rejects(
        RedisClient.connect(url, { connectTimeout: 200 }),
        (e: Error) =>
          e instanceof RedisConnectionError && /: no answer within 0.2 s$/.test(e.message),
      );
    },
  );
});

Deno.test("RedisSubscriber delivers messages of a new connection after its reconnected event", async () => {
  // Redis may send a message right behind the last confirmation of the
  // resubscription, in the same packet: it must still follow the event.
  const confirm = (channel: string, count: number) =>
    `*3\r\n$9\r\nsubscribe\r\n$${channel.length}\r\n${channel}\r\n:${count}\r\n`;
  const message = "*3\r\n$7\r\nmessage\r\n$4\r\nroom\r\n$5\r\nfirst\r\n";
  await withFakeServer(
    (command, connection) => {
      if (command === "PING") return "+PONG\r\n";
      if (connection === 1) return command === "SUBSCRIBE room" ? confirm("room", 1) : "close";
      // On the new connection, both channels the subscriber was asked for.
      if (command === "SUBSCRIBE room drop") {
        return confirm("room", 1) + confirm("drop", 2) + message;
      }
      return null;
    },
    async (url) => {
      const seen = new Recorder<string>();
      await using subscriber = await RedisSubscriber.connect(url, {
        ...FAST,
        onEvent: (event) => seen.add(event.type),
        onMessage: (message) => seen.add(message.text),
      });
      await subscriber.subscribe("room");
      // The server hangs up on this one: the subscriber reconnects.
      await assert.rejects(subscriber.subscribe("drop"), RedisConnectionError);
      await seen.until((s) => s.includes("first"), "the message on the new connection");
      assert.deepEqual(seen.items, ["disconnected", "reconnecting", "reconnected", "first"]);
    },
  );
});

Deno.test("RedisClient.close() under pending commands rejects them and releases everything", async () => {
  await using redis = await RedisServer.start();
  await using watcher = await RedisClient.connect(redis.url);
  const events = new Recorder<RedisEvent>();
  const client = await RedisClient.connect(redis.url, { onEvent: events.add });
  const blocked = client.command("BLPOP", "nothing", 0); // Redis holds it
  const behind = Array.from({ length: 100 }, (_, i) => client.command("ECHO", i));
  await waitFor(
    async () => /blocked_clients:1/.test((await watcher.string("INFO", "clients"))!),
    "BLPOP to block",
  );
  const unwritten = client.command("PING"); // encoded, not yet written: close() comes first
  const settled = Promise.allSettled([blocked, ...behind, unwritten]);
  await client.close();
  for (const result of await settled) {
    assert.equal(result.status, "rejected");
    assert.ok(result.reason instanceof RedisConnectionError);
    assert.equal(
      result.reason.message,
      `The client for redis at 127.0.0.1:${redis.port} was closed`,
    );
  }
  await assert.rejects(client.command("PING"), /was closed/);
  await client.close(); // again: nothing to do
  assert.deepEqual(events.items, []); // closing is not a disconnection

  const subscriber = await RedisSubscriber.connect(redis.url, { onMessage: () => {} });
  const subscribing = assert.rejects(subscriber.subscribe("a", "b"), RedisConnectionError);
  await subscriber.close();
  await subscribing;
  await assert.rejects(subscriber.subscribe("c"), /was closed/);

  // Redis saw both connections go: only the watcher is left.
  await waitFor(
    async () => (await watcher.string("CLIENT", "LIST"))!.trim().split("\n").length === 1,
    "Redis to see the connections closed",
  );
});

/** Polls `check` (each call a round trip, no sleep) until it holds. */
async function waitFor(check: () => Promise<boolean>, what: string): Promise<void> {
  await within(
    (async () => {
      while (!await check()) {
        // Each check is a round trip to Redis: the loop cannot spin without waiting.
      }
    })(),
    what,
  );
}
