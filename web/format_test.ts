import assert from "node:assert/strict";
import {
  mentions as terminalMentions,
  nameColour,
  NamePalette,
  PALETTE_256,
} from "../lib/terminal/style.ts";
import {
  classifyTyped,
  describe,
  formatTime,
  mentions,
  NAME_PALETTE,
  NameColours,
  nameIndex,
  splitMentions,
} from "./format.js";

const NAMES = ["ana", "Ana", "bea", "carlos", "dmitri", "eve", "user1", "user2", "zoë", "李", "x"];

/** What the terminal writes for palette entry `index` on a 256-colour screen. */
const sgr = (index: number) => `38;5;${NAME_PALETTE[index].xterm}`;

Deno.test("NAME_PALETTE is the terminal's 256-colour palette, in its order", () => {
  assert.deepEqual(NAME_PALETTE.map((entry) => entry.xterm), PALETTE_256);
});

Deno.test("nameIndex gives a name the terminal's colour", () => {
  for (const name of NAMES) assert.equal(sgr(nameIndex(name)), nameColour(name, 256), name);
  assert.equal(nameIndex("ANA"), nameIndex("ana"));
  // Spread: many names use the whole palette.
  const used = new Set(Array.from({ length: 400 }, (_, i) => nameIndex(`user${i}`)));
  assert.equal(used.size, NAME_PALETTE.length);
});

Deno.test("NameColours picks what the terminal's NamePalette picks as people come and go", () => {
  const web = new NameColours();
  const terminal = new NamePalette({ colors: 256 });
  const seen: [string, string][] = [];
  const look = (name: string) => seen.push([sgr(web.index(name)), terminal.colour(name)]);
  const people = Array.from({ length: 30 }, (_, i) => `p${i * 7}`);
  for (const name of people) look(name); // past the palette's 24: some share
  for (const name of people.slice(3, 12)) {
    web.leave(name);
    terminal.leave(name);
  }
  web.rename("p0", "cero");
  terminal.rename("p0", "cero");
  for (const name of ["cero", "P7", "nuevo", "otra", ...people.slice(3, 8)]) look(name);
  for (const [mine, theirs] of seen) assert.equal(mine, theirs);
  // Among fewer people than colours, nobody shares.
  const few = new NameColours();
  const indexes = people.slice(0, 20).map((name) => few.index(name));
  assert.equal(new Set(indexes).size, 20);
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

Deno.test("mentions finds a name as a whole word in any case, as the terminal does", () => {
  const cases: [string, string][] = [
    ["hola ana!", "ana"],
    ["ANA, ¿vienes?", "ana"],
    ["banana", "ana"],
    ["ana_b here", "ana"],
    ["hi bea-2", "bea-2"],
    ["hi bea-22", "bea-2"],
    ["anaé", "ana"],
    ["(ana)", "ana"],
    ["a.b", "a.b"],
    ["axb", "a.b"],
  ];
  for (const [text, name] of cases) {
    assert.equal(mentions(text, name), terminalMentions(text, name), `${text} / ${name}`);
  }
  assert.equal(mentions("hola ana!", "ana"), true);
  assert.equal(mentions("banana", "ana"), false);
  assert.deepEqual(splitMentions("Ana? ana! banana", "ana"), ["", "Ana", "? ", "ana", "! banana"]);
  assert.deepEqual(splitMentions("nada", "ana"), ["nada"]);
});
