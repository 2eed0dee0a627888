import assert from "node:assert/strict";
import { nameColour } from "../lib/terminal/style.ts";
import {
  classifyTyped,
  describe,
  formatTime,
  mentions,
  NAME_PALETTE,
  nameIndex,
} from "./format.js";

const NAMES = ["ana", "Ana", "bea", "carlos", "dmitri", "eve", "user1", "user2", "zoë", "李", "x"];

Deno.test("nameIndex gives a name the terminal's colour", () => {
  for (const name of NAMES) {
    assert.equal(NAME_PALETTE[nameIndex(name)].ansi, nameColour(name), name);
  }
  assert.equal(nameIndex("ANA"), nameIndex("ana"));
  // Spread: many names use most of the palette.
  const used = new Set(Array.from({ length: 200 }, (_, i) => nameIndex(`user${i}`)));
  assert.equal(used.size, NAME_PALETTE.length);
});

/** WCAG relative luminance of `#rrggbb`. */
function luminance(hex: string): number {
  const [r, g, b] = [1, 3, 5].map((i) => {
    const c = parseInt(hex.slice(i, i + 2), 16) / 255;
    return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}

function contrast(a: string, b: string): number {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
  return (hi + 0.05) / (lo + 0.05);
}

/** The `--name: #rrggbb` variables of one CSS block. */
function variables(block: string): Map<string, string> {
  return new Map([...block.matchAll(/--([\w-]+):\s*(#[0-9a-f]{6})/gi)].map((m) => [m[1], m[2]]));
}

Deno.test("NAME_PALETTE reads at 4.5:1 on every background of style.css that shows names", async () => {
  const css = await Deno.readTextFile(new URL("./style.css", import.meta.url));
  const light = variables(/:root\s*{([^}]*)}/.exec(css)?.[1] ?? "");
  const dark = variables(
    /prefers-color-scheme:\s*dark\)\s*{\s*:root\s*{([^}]*)}/.exec(css)?.[1] ?? "",
  );
  for (const [scheme, vars] of [["light", light], ["dark", dark]] as const) {
    for (const background of ["bg", "panel", "history", "private", "mention"]) {
      const bg = vars.get(background);
      assert.ok(bg, `style.css sets --${background} for the ${scheme} scheme`);
      for (const entry of NAME_PALETTE) {
        const ratio = contrast(entry[scheme], bg);
        assert.ok(
          ratio >= 4.5,
          `${entry[scheme]} on ${scheme} --${background}: ${ratio.toFixed(2)}`,
        );
      }
    }
  }
});

Deno.test("formatTime shows the hour today and the date on other days", () => {
  const now = new Date(2026, 10, 24, 18, 30).getTime();
  assert.equal(formatTime(new Date(2026, 10, 24, 9, 5).getTime(), now), "09:05");
  assert.equal(formatTime(new Date(2026, 10, 23, 23, 59).getTime(), now), "2026-11-23 23:59");
});

Deno.test("classifyTyped tells what a typed line will do", () => {
  assert.deepEqual(classifyTyped("hola"), { kind: "say", text: "hola" });
  assert.deepEqual(classifyTyped("//etc/passwd"), { kind: "say", text: "/etc/passwd" });
  assert.deepEqual(classifyTyped("/me waves"), { kind: "action", text: "waves" });
  assert.deepEqual(classifyTyped("/ME waves"), { kind: "action", text: "waves" });
  assert.deepEqual(classifyTyped("/msg bea hi"), { kind: "private", text: "bea hi" });
  assert.deepEqual(classifyTyped("/quit bye"), { kind: "quit", text: "bye" });
  assert.deepEqual(classifyTyped("/join #dev"), { kind: "command", text: "/join #dev" });
  assert.deepEqual(classifyTyped("/"), { kind: "command", text: "/" });
});

Deno.test("describe words the notices", () => {
  const ana = { id: 1, name: "ana" };
  assert.equal(describe({ type: "join", room: "#dev", who: ana }), "ana joined #dev");
  assert.equal(
    describe({ type: "part", room: "#dev", who: ana, reason: "later" }),
    "ana left #dev (later)",
  );
  assert.equal(describe({ type: "quit", who: ana, reason: "eof" }), "ana left");
  assert.equal(describe({ type: "quit", who: ana, reason: "timed out" }), "ana left (timed out)");
  assert.equal(
    describe({ type: "nick", who: { id: 1, name: "bea" }, from: "ana" }),
    "ana is now bea",
  );
  assert.equal(
    describe({ type: "topic", room: "#dev", topic: "ship it", by: null }),
    "server set the topic: ship it",
  );
  assert.equal(
    describe({ type: "joined", room: "#dev", topic: "", count: 2, members: [] }),
    "You are in #dev, with 1 other",
  );
  assert.equal(describe({ type: "ignoring", names: [] }), "You ignore nobody");
  assert.equal(describe({ type: "message" }), null);
});

Deno.test("mentions finds a name as a whole word in any case", () => {
  assert.equal(mentions("hola ana!", "ana"), true);
  assert.equal(mentions("ANA, ¿vienes?", "ana"), true);
  assert.equal(mentions("banana", "ana"), false);
  assert.equal(mentions("ana_b here", "ana"), false);
  assert.equal(mentions("hi bea-2", "bea-2"), true);
  assert.equal(mentions("hi bea-22", "bea-2"), false);
});
