/**
 * A program that uses a {@linkcode SqliteStore} the way the server will, for
 * tests/store_test.ts to kill or to take permissions from. It reports on
 * stdout, one line per fact, written before it does anything else:
 *
 * - `writer FILE`: appends numbered lines to `#kill` as fast as its event loop
 *   turns, 50 per turn, printing `a N T` after line N was appended and
 *   `c N T` when a commit made lines up to N durable (T: performance.now()).
 *   Stops by itself after 30 s or 3,000,000 lines, if nobody kills it first.
 * - `readonly FILE`: appends 10 lines to `#ro` every 10 ms, printing each store
 *   event as JSON, until the store reports `recovered` (or 20 s pass); then
 *   flushes, prints `{"appended":N,"recent":[...]}`, closes and prints `closed`.
 * - `open FILE`: opens and closes the store; prints `opened`, or the message of
 *   the StoreError it got.
 *
 * @module
 */

import { SqliteStore } from "../lib/store/sqlite.ts";
import { StoreError, type StoreEvent } from "../lib/store/store.ts";

const encoder = new TextEncoder();

/** Writes one line to stdout, all of it, before returning. */
function out(text: string): void {
  const bytes = encoder.encode(`${text}\n`);
  for (let at = 0; at < bytes.length;) at += Deno.stdout.writeSync(bytes.subarray(at));
}

async function writer(path: string): Promise<void> {
  let durable = 0;
  const store = await SqliteStore.open(path, {
    // Keep everything: the test checks that no line is missing.
    keep: 1_000_000_000,
    onEvent: (event) => {
      if (event.type === "stored") {
        durable += event.lines;
        out(`c ${durable - 1} ${performance.now().toFixed(1)}`);
      } else out(`e ${JSON.stringify(event)}`);
    },
  });
  out("ready");
  const end = performance.now() + 30_000;
  let n = 0;
  const turn = () => {
    for (let i = 0; i < 50; i++) {
      store.append({ room: "#kill", time: Date.now(), from: "w", kind: "message", text: `${n++}` });
    }
    out(`a ${n - 1} ${performance.now().toFixed(1)}`);
    if (n < 3_000_000 && performance.now() < end) setTimeout(turn, 0);
    else void store.close().then(() => out("done"));
  };
  turn();
}

async function readonly(path: string): Promise<void> {
  let recovered = false;
  const store = await SqliteStore.open(path, {
    onEvent: (event: StoreEvent) => {
      if (event.type === "stored") return;
      if (event.type === "recovered") recovered = true;
      out(JSON.stringify(event));
    },
  });
  out("opened");
  const end = performance.now() + 20_000;
  let n = 0;
  const { promise, resolve } = Promise.withResolvers<void>();
  const timer = setInterval(() => {
    for (let i = 0; i < 10; i++) {
      store.append({
        room: "#ro",
        time: Date.now(),
        from: "w",
        kind: "message",
        text: `during${n++}`,
      });
    }
    if (recovered || performance.now() > end) {
      clearInterval(timer);
      resolve();
    }
  }, 10);
  await promise;
  await store.flush();
  out(JSON.stringify({ appended: n, recent: store.recent("#ro", 3).map((l) => l.text) }));
  await store.close();
  out("closed");
}

async function open(path: string): Promise<void> {
  try {
    await (await SqliteStore.open(path)).close();
    out("opened");
  } catch (e) {
    if (!(e instanceof StoreError)) throw e;
    out(e.message);
  }
}

const [mode, path] = Deno.args;
if (mode === "writer") await writer(path);
else if (mode === "readonly") await readonly(path);
else if (mode === "open") await open(path);
else throw new TypeError(`Usage: _store_child.ts writer|readonly|open FILE`);
