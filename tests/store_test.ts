/**
 * The SQLite store in a process of its own (tests/_store_child.ts): killed with
 * SIGKILL while it writes, and running on a file it is not allowed to write.
 *
 * @module
 */

import assert from "node:assert/strict";
import { SqliteStore } from "../lib/store/sqlite.ts";
import { LineReader, streamSource, within } from "./_helpers.ts";
import { bypassesPermissions, fileTexts, tempDir } from "./_files.ts";

const CHILD = new URL("./_store_child.ts", import.meta.url).pathname;

/** A child running tests/_store_child.ts with read and write access to `dir` only. */
class StoreChild implements AsyncDisposable {
  readonly child: Deno.ChildProcess;
  readonly stdout: LineReader;
  readonly #stderr: Promise<string>;

  /**
   * `prefix`: a command that runs deno (setpriv, to drop privileges), if any;
   * `permissions`: instead of read and write access to `dir`.
   */
  constructor(
    mode: string,
    dir: string,
    path: string,
    prefix: string[] = [],
    permissions = [`--allow-read=${dir}`, `--allow-write=${dir}`],
  ) {
    const deno = [Deno.execPath(), "run", ...permissions, CHILD, mode, path];
    const [program, ...args] = [...prefix, ...deno];
    this.child = new Deno.Command(program, { args, stdout: "piped", stderr: "piped" }).spawn();
    this.stdout = new LineReader(streamSource(this.child.stdout));
    this.#stderr = new Response(this.child.stderr).text();
  }

  /** What the child wrote to stderr (after it exited). */
  stderr(): Promise<string> {
    return this.#stderr;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    try {
      this.child.kill("SIGKILL");
    } catch {
      // Exited already.
    }
    await this.child.status;
    await this.stdout.rest().catch(() => {});
    await this.#stderr;
  }
}

Deno.test("SqliteStore killed with SIGKILL keeps every line committed before, in order, once", async () => {
  using dir = tempDir("charla_store_");
  const path = `${dir.path}/charla.db`;
  await using child = new StoreChild("writer", dir.path, path);
  await child.stdout.until("ready");
  // What it says: `a N` (line N appended), `c N` (lines up to N durable).
  let lastAppended = -1;
  let lastDurable = -1;
  let commits = 0;
  const track = (line: string) => {
    const [kind, n] = line.split(" ");
    if (kind === "a") lastAppended = Number(n);
    else if (kind === "c") {
      lastDurable = Number(n);
      commits++;
    } else assert.fail(`Unexpected line from the writer: ${line}`);
  };
  // Let it write for a while: at least 20 commits and 5,000 lines.
  await within(
    (async () => {
      while (commits < 20 || lastAppended < 5_000) {
        const line = await child.stdout.next("a line from the writer");
        if (line === null) throw new Error(`The writer ended: ${await child.stderr()}`);
        track(line);
      }
    })(),
    "the writer's traffic",
  );
  child.child.kill("SIGKILL");
  const status = await child.child.status;
  assert.equal(status.signal, "SIGKILL");
  // What the child wrote before it died is still in the pipe: read it all.
  for (const line of await child.stdout.rest()) track(line);
  assert.ok(lastAppended >= lastDurable);

  const texts = fileTexts(path, "#kill");
  // Lines 0..M, each once, in order: no gap, no duplicate, nothing reordered.
  texts.forEach((text, i) => assert.equal(text, `${i}`, `row ${i}`));
  const kept = texts.length - 1;
  // Every line whose commit was reported is there...
  assert.ok(kept >= lastDurable, `kept up to ${kept}, but ${lastDurable} was reported durable`);
  // ...and nothing that was never appended. What is missing is what was
  // appended after the last commit that finished.
  assert.ok(kept <= lastAppended, `kept up to ${kept}, but only ${lastAppended} was appended`);

  // The killed file opens as a store, with the lines in its history.
  await using store = await SqliteStore.open(path);
  assert.equal(store.recent("#kill", 1)[0].text, `${kept}`);
});

Deno.test("SqliteStore on a read-only file reports failed once, goes on, and recovers with every line", async () => {
  using dir = tempDir("charla_store_");
  const path = `${dir.path}/charla.db`;
  {
    await using store = await SqliteStore.open(path);
    for (let i = 0; i < 5; i++) {
      store.append({ room: "#ro", time: 0, from: "ana", kind: "message", text: `before${i}` });
    }
  }
  // root writes read-only files anyway: run the child without the
  // capabilities that let it (it stays the owner, so chmod still works for us).
  const drop = "-dac_override,-dac_read_search,-fowner";
  const prefix = bypassesPermissions(dir.path)
    ? ["setpriv", `--inh-caps=${drop}`, `--bounding-set=${drop}`, "--"]
    : [];
  Deno.chmodSync(path, 0o444);
  await using child = new StoreChild("readonly", dir.path, path, prefix);
  await child.stdout.until("opened");
  const failed = JSON.parse((await child.stdout.next("the failure"))!);
  assert.deepEqual(failed, {
    type: "failed",
    message: `Cannot write to the database "${path}": attempt to write a readonly database; ` +
      "make the file, its -wal and -shm files and its directory writable. The chat goes on; " +
      "unwritten lines are kept in memory and written when it works again",
  });
  // Give the permissions back; SQLite made its -wal and -shm read-only like the file.
  for (const file of [path, `${path}-wal`, `${path}-shm`]) {
    try {
      Deno.chmodSync(file, 0o644);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  }
  // The next line is the recovery: no second failure came meanwhile.
  assert.deepEqual(JSON.parse((await child.stdout.next("the recovery"))!), {
    type: "recovered",
    dropped: 0,
  });
  const summary = JSON.parse((await child.stdout.next("the summary"))!);
  const n = summary.appended as number;
  assert.deepEqual(summary.recent, [`during${n - 3}`, `during${n - 2}`, `during${n - 1}`]);
  assert.equal(await child.stdout.next("the close"), "closed");
  assert.equal(await child.stdout.next("the end"), null);
  assert.equal((await child.child.status).code, 0);
  assert.deepEqual(fileTexts(path, "#ro"), [
    ...Array.from({ length: 5 }, (_, i) => `before${i}`),
    ...Array.from({ length: n }, (_, i) => `during${i}`),
  ]);
});

Deno.test("SqliteStore.open() without write permission says which flags to pass", async () => {
  using dir = tempDir("charla_store_");
  const path = `${dir.path}/charla.db`;
  {
    // Granting the file alone is enough.
    await using child = new StoreChild("open", dir.path, path, [], [
      `--allow-read=${path}`,
      `--allow-write=${path}`,
    ]);
    assert.equal(await child.stdout.next("the outcome"), "opened");
  }
  await using child = new StoreChild("open", dir.path, path, [], [`--allow-read=${dir.path}`]);
  assert.equal(
    await child.stdout.next("the outcome"),
    `Cannot open the database "${path}": no permission to use it; ` +
      "run with --allow-read and --allow-write for the file or its directory",
  );
});
