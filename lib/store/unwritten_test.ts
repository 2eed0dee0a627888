import assert from "node:assert/strict";
import { Unwritten } from "./unwritten.ts";

const decoder = new TextDecoder();

Deno.test("Unwritten hands out every line once, in order, across blocks it reuses", () => {
  const queue = new Unwritten();
  const line = (n: number) => `line ${n} ${"x".repeat(n % 200)}`;
  let next = 0;
  let expected = 0;
  // Several blocks' worth a round; written blocks go back to the pool and
  // are filled again while later runs still sit in other blocks.
  for (let round = 0; round < 6; round++) {
    for (let i = 0; i < 4_000; i++, next++) {
      queue.addText(next, "#lobby", `u${next % 3}`, "message", 0, line(next));
    }
    while (queue.lines > 1_000) {
      const batch = queue.take(1_500);
      const texts = decoder.decode(batch.bytes).split("\n").slice(0, -1);
      for (const text of texts) assert.equal(text, line(expected++));
      let id = batch.runs[0][0];
      for (const run of batch.runs) {
        assert.equal(run[0], id);
        id += run[5];
      }
      queue.written();
    }
  }
  const rest = decoder.decode(queue.take(Infinity).bytes).split("\n").slice(0, -1);
  for (const text of rest) assert.equal(text, line(expected++));
  assert.equal(expected, next);
});

Deno.test("Unwritten puts a failed batch back first, and drops the oldest waiting lines", () => {
  const queue = new Unwritten();
  for (let i = 0; i < 10; i++) queue.addText(i, "#lobby", "ana", "message", 0, `l${i}`);
  const first = decoder.decode(queue.take(4).bytes);
  assert.equal(first, "l0\nl1\nl2\nl3\n");
  // While the batch is at the writer, the oldest waiting lines can go...
  assert.equal(queue.drop(2), 2);
  queue.rewind(); // ...and the batch comes back in front of what is left.
  assert.equal(queue.lines, 8);
  assert.equal(decoder.decode(queue.take(100).bytes), "l0\nl1\nl2\nl3\nl6\nl7\nl8\nl9\n");
  assert.deepEqual(queue.entries("#lobby", 7).map((e) => [e.id, e.line.text]), [
    [0, "l0"],
    [1, "l1"],
    [2, "l2"],
    [3, "l3"],
    [6, "l6"],
  ]);
});

/**
 * Runs `source` (a module) in a new deno with V8 reporting the protectors it
 * invalidates; returns what it printed.
 */
async function protectorsInvalidated(source: string): Promise<string> {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/main.ts`, source);
    const { stdout, stderr, success } = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--v8-flags=--trace-protector-invalidation", `${dir}/main.ts`],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.ok(success, new TextDecoder().decode(stderr));
    return new TextDecoder().decode(stdout);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("a batch's buffer has one view, so moving it to the writer keeps V8's detach protector", async () => {
  // Moving a buffer with two views to another thread makes V8 throw away all
  // compiled code that reads typed arrays (the chat's framing among it).
  // First, that this deno reports it, so the check below can fail.
  const control = await protectorsInvalidated(
    "const a = new Uint8Array(8); a.subarray(1); structuredClone(a.buffer, { transfer: [a.buffer] });",
  );
  assert.match(control, /Invalidating protector cell ArrayBufferDetaching/);
  const module = JSON.stringify(new URL("./unwritten.ts", import.meta.url).href);
  const moved = await protectorsInvalidated(`
    import { touchedBuffer, Unwritten } from ${module};
    const queue = new Unwritten();
    let spare = null;
    for (let round = 0; round < 4; round++) {
      for (let i = 0; i < 100; i++) queue.addText(i, "#lobby", "ana", "message", 0, "hola " + i);
      // A batch into a new buffer, into the one the store makes at open, and
      // into the one the writer handed back.
      if (round === 1) spare = touchedBuffer(64 * 1024);
      const { bytes } = queue.take(100, spare);
      // To the writer and back, as postMessage moves it: a buffer with no view.
      spare = structuredClone(bytes.buffer, { transfer: [bytes.buffer] });
      queue.written();
    }
    console.log("moved 4 batches");
  `);
  assert.equal(moved, "moved 4 batches\n");
});
