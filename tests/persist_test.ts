/**
 * server.ts with `--db`, spawned as a user runs it (read and write access to
 * the database's directory only): history, topics and bans across a restart,
 * a SIGKILL during traffic, retention, and a store that cannot write (a
 * read-only file, a full disk) while the chat goes on.
 *
 * @module
 */

import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { formatUntil } from "../lib/core/bans.ts";
import { LineReader, LoopbackClient, streamSource, TestClient, within } from "./_helpers.ts";
import { bypassesPermissions, fileTexts, tempDir } from "./_files.ts";

const ROOT = new URL("..", import.meta.url);
const encoder = new TextEncoder();

/** server.ts in a process of its own, relaying, on 127.0.0.1 and a free port. */
class SpawnedServer implements AsyncDisposable {
  readonly child: Deno.ChildProcess;
  /** Its console (stdout) after the `listening` line, and its stderr. */
  readonly stdout: LineReader;
  readonly stderr: LineReader;
  port = 0;
  readonly #stdin: WritableStreamDefaultWriter<Uint8Array>;

  /**
   * `dir`: the only directory it may read and write. `prefix`: a command that
   * runs deno (setpriv, to drop privileges), if any.
   */
  constructor(dir: string, args: string[], prefix: string[] = []) {
    const deno = [
      Deno.execPath(),
      "run",
      "--allow-net",
      `--allow-read=${dir}`,
      `--allow-write=${dir}`,
      "server.ts",
      "-r",
      "-p",
      "0",
      ...args,
    ];
    const [program, ...rest] = [...prefix, ...deno];
    this.child = new Deno.Command(program, {
      args: rest,
      cwd: ROOT,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.stdout = new LineReader(streamSource(this.child.stdout));
    this.stderr = new LineReader(streamSource(this.child.stderr));
    this.#stdin = this.child.stdin.getWriter();
  }

  /** Starts a server and reads its port from its first line. */
  static async start(dir: string, args: string[], prefix: string[] = []): Promise<SpawnedServer> {
    const server = new SpawnedServer(dir, args, prefix);
    const first = await server.stdout.next("the listening line");
    // `listening on 127.0.0.1:<port>`, or its JSON form with --json.
    const port = /^(?:listening on |\{.*"event":"listening","address":")127\.0\.0\.1:(\d+)/
      .exec(first ?? "")?.[1];
    if (port === undefined) {
      await server[Symbol.asyncDispose]();
      throw new Error(`server.ts did not start: ${first}`);
    }
    server.port = Number(port);
    return server;
  }

  /** Types a line on the operator's console. */
  async type(line: string): Promise<void> {
    await this.#stdin.write(encoder.encode(`${line}\n`));
  }

  /** SIGTERM: a graceful shutdown. Resolves with the exit code. */
  async stop(): Promise<number> {
    this.child.kill("SIGTERM");
    return (await within(this.child.status, "server.ts to stop")).code;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.#stdin.close().catch(() => {});
    try {
      this.child.kill("SIGKILL");
    } catch {
      // Exited already.
    }
    await this.child.status;
    await this.stdout.rest().catch(() => {});
    await this.stderr.rest().catch(() => {});
  }
}

/** `[HH:MM] ` at the start of a history line. */
const STAMP = /^\[\d\d:\d\d\] /;

/** Connects, names itself, and returns the history shown on joining (without stamps). */
async function joinAs(
  port: number,
  name: string,
): Promise<{ client: TestClient; history: string[] }> {
  const client = await TestClient.connect(port);
  await client.send(`/nick ${name}`);
  const seen = await client.lines.until(`* you are now ${name}`);
  const start = seen.findIndex((line) => /^\* last \d+ lines? of /.test(line));
  const history = start < 0 ? [] : seen.slice(start + 1, seen.indexOf("* end of history"));
  return { client, history: history.map((line) => line.replace(STAMP, "")) };
}

Deno.test("server.ts --db keeps history and topics across a graceful restart", async () => {
  using dir = tempDir("charla_persist_");
  const db = `${dir.path}/charla.db`;
  {
    await using server = await SpawnedServer.start(dir.path, ["--db", db]);
    const { client: ana } = await joinAs(server.port, "ana");
    await using _ = ana;
    await ana.send("uno", "/me saluda", "dos", "/join #dev", "/topic lanzamiento el viernes");
    await ana.send("en dev");
    await server.stdout.until(/\[#dev ana\] en dev$/);
    await server.type("aviso para todos");
    await server.stdout.until(/\[everyone server\] aviso para todos$/);
    assert.equal(await server.stop(), 0);
  }
  await using server = await SpawnedServer.start(dir.path, ["--db", db]);
  const { client: bea, history } = await joinAs(server.port, "bea");
  await using _ = bea;
  // The operator's words to everyone went to the rooms with people in them: #dev.
  assert.deepEqual(history, ["<ana> uno", "** ana saluda", "<ana> dos"]);
  await bea.send("/join #dev");
  const dev = await bea.lines.until("* end of history");
  assert.deepEqual(dev.map((line) => line.replace(STAMP, "")), [
    "* you are now in #dev; nobody else is here",
    "* topic: lanzamiento el viernes",
    "* last 2 lines of #dev:",
    "<ana> en dev",
    "<server> aviso para todos",
    "* end of history",
  ]);
});

Deno.test("server.ts --history-keep keeps that many lines per room and prunes the rest", async () => {
  using dir = tempDir("charla_persist_");
  const db = `${dir.path}/charla.db`;
  {
    await using server = await SpawnedServer.start(dir.path, [
      "--db",
      db,
      "--history-keep",
      "5",
      "--json",
    ]);
    await using ana = await TestClient.connect(server.port);
    await ana.send(...Array.from({ length: 20 }, (_, i) => `línea ${i}`));
    await server.stdout.until(/"text":"línea 19"/);
    assert.equal(await server.stop(), 0);
    // What the store did is reported at the end: every line written, the old ones pruned.
    const events = (await server.stdout.rest()).map((line) => JSON.parse(line));
    const store = events.find((e) => e.event === "store");
    assert.equal(store?.stored, 20, JSON.stringify(events));
    assert.ok(store.pruned >= 10, `pruned ${store.pruned}`);
  }
  await using server = await SpawnedServer.start(dir.path, [
    "--db",
    db,
    "--history-keep",
    "5",
    "--history",
    "50",
  ]);
  const { client, history } = await joinAs(server.port, "bea");
  await using _ = client;
  assert.deepEqual(history, [15, 16, 17, 18, 19].map((i) => `<user1> línea ${i}`));
});

Deno.test("server.ts --db killed with SIGKILL during traffic: after a restart its history holds every line a client had received, but those of the last moments", async () => {
  using dir = tempDir("charla_persist_");
  const db = `${dir.path}/charla.db`;
  const SENDERS = 4;
  const LINES = 5_000;
  /** A line received by some client this long before the kill must be in the history. */
  const MARGIN_MS = 250;
  let server: SpawnedServer | null = await SpawnedServer.start(dir.path, [
    "--db",
    db,
    "--history-keep",
    "100000",
  ]);
  try {
    const clients: TestClient[] = [];
    for (let k = 0; k < SENDERS; k++) {
      const client = await TestClient.connect(server.port);
      await client.send(`/nick w${k}`);
      await client.lines.until(`* you are now w${k}`);
      clients.push(client);
    }
    /** For each sender, when any client first received each of its lines. */
    const firstSeen: number[][] = Array.from({ length: SENDERS }, () => []);
    let received = 0;
    const killAt = Promise.withResolvers<void>();
    const readers = clients.map(async (client) => {
      try {
        for (let line; (line = await client.lines.next("a relayed line")) !== null;) {
          const match = /^<w(\d)> w\d-(\d+)$/.exec(line);
          if (match === null) continue;
          const times = firstSeen[Number(match[1])];
          times[Number(match[2])] ??= performance.now();
          if (++received >= SENDERS * (SENDERS - 1) * 500) killAt.resolve();
        }
      } catch (error) {
        if (!(error instanceof Deno.errors.ConnectionReset)) throw error;
      }
    });
    let stop = false;
    const sent = new Array(SENDERS).fill(0);
    const senders = clients.map(async (client, k) => {
      try {
        for (let i = 0; i < LINES && !stop; i += 10) {
          await client.send(...Array.from({ length: 10 }, (_, j) => `w${k}-${i + j}`));
          sent[k] = i + 10;
          // A chat's pace, not a flood: the kill must find traffic under way.
          await new Promise((resolve) => setTimeout(resolve, 2));
        }
      } catch (error) {
        if (
          !(error instanceof Deno.errors.BrokenPipe ||
            error instanceof Deno.errors.ConnectionReset)
        ) throw error;
      }
    });
    await within(killAt.promise, "traffic to be under way");
    const killedAt = performance.now();
    server.child.kill("SIGKILL");
    assert.equal((await server.child.status).signal, "SIGKILL");
    stop = true;
    await Promise.all([...senders, ...readers]);
    for (const client of clients) client.close();
    await server[Symbol.asyncDispose]();
    server = null;

    server = await SpawnedServer.start(dir.path, ["--db", db, "--history", "100000"]);
    await using reader = await TestClient.connect(server.port);
    const block = await reader.lines.until("* end of history");
    const kept: number[][] = Array.from({ length: SENDERS }, () => []);
    for (const line of block.slice(1, -1)) {
      const match = /^\[\d\d:\d\d\] <w(\d)> w\d-(\d+)$/.exec(line);
      assert.ok(match !== null, `a history line that was never said: ${line}`);
      kept[Number(match[1])].push(Number(match[2]));
    }
    let total = 0;
    for (let k = 0; k < SENDERS; k++) {
      // Each sender's lines, each once, in order, none missing before its last.
      kept[k].forEach((i, n) => assert.equal(i, n, `sender w${k}: line ${n} is ${i}`));
      total += kept[k].length;
      const last = kept[k].length - 1;
      assert.ok(last < sent[k], `w${k}: ${last + 1} lines kept, ${sent[k]} sent`);
      // Every line some client had received well before the kill is there.
      const early = firstSeen[k].findLastIndex((t) => t !== undefined && t < killedAt - MARGIN_MS);
      assert.ok(
        last >= early,
        `w${k}: line ${early} was received ${killedAt - firstSeen[k][early]} ms before the ` +
          `kill, but the history ends at ${last}`,
      );
    }
    assert.ok(total >= SENDERS * 100, `only ${total} lines in the history`);
  } finally {
    await server?.[Symbol.asyncDispose]();
  }
});

Deno.test("server.ts bans by name, address and network, keeps them across a restart, and lets them end", async () => {
  using dir = tempDir("charla_persist_");
  const db = `${dir.path}/charla.db`;
  /** The next JSON event of a kind from the server's console. */
  const next = async (server: SpawnedServer, event: string) =>
    JSON.parse((await server.stdout.until(new RegExp(`"event":"${event}"`))).at(-1)!);
  /** What a client from `from` reads on connecting: its first line, and, if banned, the rest. */
  const firstWords = async (port: number, from: string) => {
    await using client = await LoopbackClient.connect(port, from);
    const first = await client.lines.next();
    return first?.startsWith("* you are banned")
      ? { first, rest: await client.lines.rest() }
      : { first };
  };
  let spamUntil: number;
  {
    await using server = await SpawnedServer.start(dir.path, ["--db", db, "--json"]);
    await using ana = await LoopbackClient.connect(server.port, "127.0.0.2");
    await ana.send("/nick ana");
    await ana.lines.until("* you are now ana");
    await using carlos = await LoopbackClient.connect(server.port, "127.0.0.5");
    await carlos.lines.until(/^\* you are in #lobby/);
    await using bea = await LoopbackClient.connect(server.port, "127.0.0.3");
    await bea.lines.until(/^\* you are in #lobby/);

    // A name: its holder goes, told why, and so does their address.
    await server.type("/ban ana 2h spam");
    const ban = await next(server, "ban");
    spamUntil = ban.until;
    assert.deepEqual([ban.mask, ban.kind, ban.reason], ["ana", "name", "spam"]);
    assert.ok(spamUntil - Date.now() > 7_100_000 && spamUntil - Date.now() <= 7_200_000);
    assert.deepEqual((await next(server, "ban")).mask, "127.0.0.2");
    assert.match(
      (await next(server, "reply")).text,
      /^banned ana and 127\.0\.0\.2 until .*; removed #1 ana$/,
    );
    assert.equal(
      (await ana.lines.rest()).at(-1),
      `* you are banned: spam (until ${formatUntil(spamUntil)})`,
    );
    // A network, until lifted: whoever is in it goes.
    await server.type("/ban 127.0.0.4/30 flood");
    assert.equal((await next(server, "ban")).mask, "127.0.0.4/30");
    assert.equal((await carlos.lines.rest()).at(-1), "* you are banned: flood");
    // A short one, to see it end.
    await server.type("/ban 127.0.0.9 2s");
    const short = await next(server, "ban");
    assert.equal(short.mask, "127.0.0.9");

    // Refused at the door, told why, logged.
    assert.deepEqual(await firstWords(server.port, "127.0.0.2"), {
      first: `* you are banned: spam (until ${formatUntil(spamUntil)})`,
      rest: [],
    });
    const refused = await next(server, "refused");
    assert.deepEqual(
      [refused.address.split(":")[0], refused.reason],
      ["127.0.0.2", "banned by 127.0.0.2"],
    );
    assert.equal((await firstWords(server.port, "127.0.0.6")).first, "* you are banned: flood");
    assert.equal(
      (await firstWords(server.port, "127.0.0.9")).first,
      `* you are banned (until ${formatUntil(short.until)})`,
    );
    // The name and its look-alikes cannot be taken; another name can.
    await bea.send("/nick ANA", "/nick AIice");
    const seen = await bea.lines.until("* you are now AIice");
    assert.deepEqual(seen, [
      "* ana left (banned: spam)",
      `* user2 left (banned: flood)`,
      '* error: the name "ANA" is banned; you are still user3',
      "* you are now AIice",
    ]);
    assert.equal(await server.stop(), 0);
  }

  await using server = await SpawnedServer.start(dir.path, ["--db", db, "--json"]);
  assert.equal(
    (await firstWords(server.port, "127.0.0.2")).first,
    `* you are banned: spam (until ${formatUntil(spamUntil)})`,
  );
  assert.equal((await firstWords(server.port, "127.0.0.7")).first, "* you are banned: flood");
  await using bea = await LoopbackClient.connect(server.port, "127.0.0.3");
  await bea.send("/nick ana");
  assert.equal(
    (await bea.lines.until(/banned|you are now/)).at(-1),
    '* error: the name "ana" is banned; you are still user1',
  );
  // The short ban ended (while the server was down, or soon after).
  await within(
    (async () => {
      while ((await firstWords(server.port, "127.0.0.9")).first?.startsWith("* you are banned")) {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    })(),
    "the 2 s ban to end",
  );
  await server.type("/bans");
  const list = [];
  for (let i = 0; i < 4; i++) list.push((await next(server, "reply")).text);
  assert.equal(list[0], "3 bans:");
  assert.deepEqual(list.slice(1).map((line) => line.trim().split(/\s+/).slice(0, 2)), [
    ["ana", "name"],
    ["127.0.0.2", "address"],
    ["127.0.0.4/30", "address"],
  ]);
  // Lifted by the operator: in at once.
  await server.type("/unban 127.0.0.4/30");
  assert.equal((await next(server, "unban")).mask, "127.0.0.4/30");
  await using carlos = await LoopbackClient.connect(server.port, "127.0.0.5");
  assert.match((await carlos.lines.next())!, /^\* welcome, you are user\d+$/);
});

Deno.test("server.ts on a read-only database says so, chats on with history in memory, and writes it all once it can", async () => {
  using dir = tempDir("charla_persist_");
  const db = `${dir.path}/charla.db`;
  {
    await using server = await SpawnedServer.start(dir.path, ["--db", db]);
    const { client } = await joinAs(server.port, "ana");
    await using _ = client;
    await client.send("antes");
    await server.stdout.until(/\[#lobby ana\] antes$/);
    assert.equal(await server.stop(), 0);
  }
  const drop = "-dac_override,-dac_read_search,-fowner";
  const prefix = bypassesPermissions(dir.path)
    ? ["setpriv", `--inh-caps=${drop}`, `--bounding-set=${drop}`, "--"]
    : [];
  Deno.chmodSync(db, 0o444);
  await using server = await SpawnedServer.start(dir.path, ["--db", db], prefix);
  const { client: ana } = await joinAs(server.port, "ana");
  await using _ana = ana;
  const { client: bea, history } = await joinAs(server.port, "bea");
  await using _bea = bea;
  assert.deepEqual(history, ["<ana> antes"], "what the file held is read");
  await ana.send("durante");
  assert.equal((await bea.lines.until(/^<ana>/)).at(-1), "<ana> durante");
  assert.match(
    (await server.stdout.until(/^\d\d:\d\d:\d\d ! store: /)).at(-1)!,
    new RegExp(
      `! store: Cannot write to the database "${db}": attempt to write a readonly database; ` +
        "make the file, its -wal and -shm files and its directory writable\\. The chat goes on",
    ),
  );
  // The chat goes on, history included (from memory).
  await bea.send("/history");
  const block = await bea.lines.until("* end of history");
  assert.deepEqual(block.slice(1, -1).map((l) => l.replace(STAMP, "")), [
    "<ana> antes",
    "<ana> durante",
  ]);
  for (const file of [db, `${db}-wal`, `${db}-shm`]) {
    try {
      Deno.chmodSync(file, 0o644);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  }
  await server.stdout.until(/\* store: writing again$/);
  assert.equal(await server.stop(), 0);
  assert.deepEqual(fileTexts(db, "#lobby"), ["antes", "durante"]);
});

Deno.test("server.ts with a full database (--db-max-size) says so and the chat goes on", async () => {
  using dir = tempDir("charla_persist_");
  const db = `${dir.path}/charla.db`;
  await using server = await SpawnedServer.start(dir.path, ["--db", db, "--db-max-size", "64K"]);
  const { client: ana } = await joinAs(server.port, "ana");
  await using _ana = ana;
  const { client: bea } = await joinAs(server.port, "bea");
  await using _bea = bea;
  const big = "x".repeat(4000);
  for (let i = 0; i < 40; i++) await ana.send(`${i} ${big}`);
  assert.match(
    (await server.stdout.until(/^\d\d:\d\d:\d\d ! store: /)).at(-1)!,
    /! store: Cannot write to the database ".*": database or disk is full; free some disk space\. The chat goes on/,
  );
  await ana.send("sigo aquí");
  const seen = await bea.lines.until("<ana> sigo aquí");
  assert.equal(seen.filter((line) => line.startsWith(`<ana> `) && line.endsWith(big)).length, 40);
  assert.equal(server.child.pid > 0, true);
  assert.equal(await server.stop(), 0);
});

Deno.test("server.ts --db refuses a file it cannot use with one sentence and exit 1", async () => {
  using dir = tempDir("charla_persist_");
  const garbage = `${dir.path}/garbage.db`;
  Deno.writeTextFileSync(garbage, "esto no es una base de datos ".repeat(200));
  const newer = `${dir.path}/newer.db`;
  const file = new DatabaseSync(newer);
  file.exec("PRAGMA application_id = 1667785074; PRAGMA user_version = 99");
  file.close();
  for (
    const [path, expected] of [
      [garbage, `file is not a database; move it aside or pass another --db`],
      [
        newer,
        `its schema is version 99 and this charla knows versions up to 3; run a newer charla or pass another --db`,
      ],
    ]
  ) {
    await using server = new SpawnedServer(dir.path, ["--db", path]);
    assert.equal((await within(server.child.status, "server.ts to exit")).code, 1);
    assert.deepEqual(await server.stderr.rest(), [
      `charla server: cannot open the database "${path}": ${expected}`,
    ]);
    assert.deepEqual(await server.stdout.rest(), []);
  }
});
