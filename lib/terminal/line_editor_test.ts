import assert from "node:assert/strict";
import {
  chatCompleter,
  type Completer,
  displayWidth,
  type EditorEvent,
  LineEditor,
} from "./line_editor.ts";
import { cellWidth, graphemes, Screen } from "./_test_screen.ts";

const LEFT = "\x1b[D";
const RIGHT = "\x1b[C";
const UP = "\x1b[A";
const DOWN = "\x1b[B";
const HOME = "\x1b[H";
const END = "\x1b[F";
const DELETE = "\x1b[3~";
const BACKSPACE = "\x7f";
const PASTE_START = "\x1b[200~";
const PASTE_END = "\x1b[201~";

const encoder = new TextEncoder();

/** Feeds each chunk as a separate read; returns the writes joined and all events. */
function feed(
  editor: LineEditor,
  ...chunks: (string | number[])[]
): { write: string; events: EditorEvent[] } {
  let write = "";
  const events: EditorEvent[] = [];
  for (const chunk of chunks) {
    const out = editor.feed(
      typeof chunk === "string" ? encoder.encode(chunk) : new Uint8Array(chunk),
    );
    write += out.write;
    events.push(...out.events);
  }
  return { write, events };
}

/** Submits each line in turn. */
function submit(editor: LineEditor, ...lines: string[]): void {
  for (const line of lines) feed(editor, `${line}\r`);
}

function assertState(editor: LineEditor, line: string, cursor: number): void {
  assert.deepEqual({ line: editor.line, cursor: editor.cursor }, { line, cursor });
}

/**
 * What the screen should show for `prompt` + `line` on a terminal `columns`
 * wide: the rows, and the cursor [row, column] before grapheme `cursor` of the
 * line. A wide character that does not fit moves whole to the next row; text
 * ending in the last column leaves the cursor at the start of the next row.
 */
function expectedView(
  prompt: string,
  line: string,
  cursor: number,
  columns: number,
): { rows: string[]; cursor: [number, number] } {
  const rows = [""];
  let col = 0;
  let at: [number, number] | undefined;
  const promptLength = graphemes(prompt).length;
  graphemes(prompt + line).forEach((grapheme, i) => {
    const width = cellWidth(grapheme);
    if (col + width > columns) {
      rows.push("");
      col = 0;
    }
    if (i === promptLength + cursor) at = [rows.length - 1, col];
    rows[rows.length - 1] += grapheme;
    col += width;
  });
  if (col === columns) {
    rows.push("");
    col = 0;
  }
  const end: [number, number] = [rows.length - 1, col];
  while (rows.length > 0 && rows.at(-1)!.trimEnd() === "") rows.pop();
  return { rows: rows.map((row) => row.trimEnd()), cursor: at ?? end };
}

/** Asserts the screen shows `above`, then the prompt and the editor's line, with the cursor right. */
function assertScreen(screen: Screen, above: string[], editor: LineEditor, prompt = "> "): void {
  const view = expectedView(prompt, editor.line, editor.cursor, screen.columns);
  assert.deepEqual(screen.lines(), [...above, ...view.rows]);
  assert.deepEqual(screen.cursor(), [above.length + view.cursor[0], view.cursor[1]]);
}

/** An editor and a screen with two chat lines above the prompt, drawn. */
function setUp(columns: number, prompt = "> "): { editor: LineEditor; screen: Screen } {
  const screen = new Screen(columns, "a: hi\r\nb: yo\r\n");
  const editor = new LineEditor({ prompt, columns });
  screen.write(editor.render());
  return { editor, screen };
}
const CHAT = ["a: hi", "b: yo"];

/** Types the chunks, writing the editor's output to the screen. */
function typeOn(screen: Screen, editor: LineEditor, ...chunks: string[]): EditorEvent[] {
  const { write, events } = feed(editor, ...chunks);
  screen.write(write);
  return events;
}

// ---------------------------------------------------------------------------
// Key decoding

Deno.test("LineEditor.feed() inserts typed text at the cursor", () => {
  const editor = new LineEditor();
  feed(editor, "hlo", LEFT, LEFT, "e", RIGHT, "l");
  assertState(editor, "hello", 4);
});

Deno.test("LineEditor.feed() keeps a UTF-8 character split across chunks", () => {
  for (const char of ["ñ", "你", "😀"]) {
    const bytes = [...encoder.encode(char)];
    for (let cut = 1; cut < bytes.length; cut++) {
      const editor = new LineEditor();
      editor.render();
      const first = feed(editor, [0x61, ...bytes.slice(0, cut)]);
      assertState(editor, "a", 1);
      assert.equal(first.write, "a");
      const second = feed(editor, bytes.slice(cut));
      assertState(editor, `a${char}`, 2);
      assert.equal(second.write, char);
    }
  }
});

Deno.test("LineEditor.feed() moves with Left and Right, in CSI and SS3 forms", () => {
  for (const [left, right] of [[LEFT, RIGHT], ["\x1bOD", "\x1bOC"]]) {
    const editor = new LineEditor();
    feed(editor, "abc", left);
    assertState(editor, "abc", 2);
    feed(editor, left, left, left);
    assertState(editor, "abc", 0);
    feed(editor, right);
    assertState(editor, "abc", 1);
    feed(editor, right, right, right);
    assertState(editor, "abc", 3);
  }
});

Deno.test("LineEditor.feed() moves to the line ends with every Home and End key", () => {
  for (const home of [HOME, "\x1bOH", "\x1b[1~", "\x1b[7~", "\x01"]) {
    const editor = new LineEditor();
    feed(editor, "abc", LEFT, home);
    assertState(editor, "abc", 0);
  }
  for (const end of [END, "\x1bOF", "\x1b[4~", "\x1b[8~", "\x05"]) {
    const editor = new LineEditor();
    feed(editor, "abc", HOME, end);
    assertState(editor, "abc", 3);
  }
});

Deno.test("LineEditor.feed() deletes before the cursor with Backspace, sent as DEL or BS", () => {
  const editor = new LineEditor();
  feed(editor, "abcd", LEFT, BACKSPACE);
  assertState(editor, "abd", 2);
  feed(editor, "\x08");
  assertState(editor, "ad", 1);
  feed(editor, HOME, BACKSPACE);
  assertState(editor, "ad", 0);
});

Deno.test("LineEditor.feed() deletes under the cursor with Delete", () => {
  const editor = new LineEditor();
  feed(editor, "abc", HOME, DELETE);
  assertState(editor, "bc", 0);
  feed(editor, END, DELETE);
  assertState(editor, "bc", 2);
});

Deno.test("LineEditor.feed() decodes an escape sequence split at every byte", () => {
  const cases: [string, string, number][] = [
    [LEFT, "abc", 1],
    ["\x1bOD", "abc", 1],
    [DELETE, "ab", 2],
    ["\x1b[7~", "abc", 0],
  ];
  for (const [key, line, cursor] of cases) {
    for (let cut = 1; cut < key.length; cut++) {
      const editor = new LineEditor();
      feed(editor, "abc", LEFT);
      const first = feed(editor, key.slice(0, cut));
      assertState(editor, "abc", 2);
      assert.equal(first.write, "");
      feed(editor, key.slice(cut));
      assertState(editor, line, cursor);
    }
  }
});

Deno.test("LineEditor.feed() swallows unknown escape sequences whole", () => {
  const unknown = [
    "\x1b[1;5C", // Ctrl-Right
    "\x1b[Z", // Shift-Tab
    "\x1b[15~", // F5
    "\x1b[<0;10;5M", // mouse click
    "\x1b[?1;2c", // device attributes reply
    "\x1b[I", // focus in
    "\x1bOP", // F1
    "\x1bx", // Alt-x
    "\x1bñ", // Alt-ñ
    "\x1b\r", // Alt-Enter
  ];
  for (const sequence of unknown) {
    const editor = new LineEditor();
    const { events } = feed(editor, "ab", sequence, "c");
    assertState(editor, "abc", 3);
    assert.deepEqual(events, []);
    const split = new LineEditor();
    feed(split, "ab", sequence.slice(0, 2), sequence.slice(2), "c");
    assertState(split, "abc", 3);
  }
});

Deno.test("LineEditor.feed() drops an unfinished escape sequence that grows too long", () => {
  const editor = new LineEditor();
  feed(editor, `\x1b[${"1".repeat(40)}`, "a");
  assertState(editor, "a", 1);
});

Deno.test("LineEditor.feed() keeps a lone ESC pending until the next chunk", () => {
  const editor = new LineEditor();
  feed(editor, "ab", "\x1b");
  assertState(editor, "ab", 2);
  feed(editor, "[D");
  assertState(editor, "ab", 1);
  // The next byte decides: here an Alt-x, swallowed.
  feed(editor, "\x1b", "x");
  assertState(editor, "ab", 1);
  // ESC ESC: the first one is dropped and the second starts a key.
  feed(editor, "\x1b\x1b[D");
  assertState(editor, "ab", 0);
});

Deno.test("LineEditor.feed() ignores other control bytes", () => {
  const editor = new LineEditor();
  const controls = [0x00, 0x02, 0x06, 0x07, 0x09, 0x0e, 0x0f, 0x10, 0x12, 0x14, 0x1a, 0x1c, 0x1f];
  const { events } = feed(editor, "a", controls, "b");
  assertState(editor, "ab", 2);
  assert.deepEqual(events, []);
});

Deno.test("LineEditor.feed() drops C1 controls and replaces invalid UTF-8", () => {
  const editor = new LineEditor();
  feed(editor, [0x61, 0xc2, 0x9b, 0x62, 0xff, 0x63, 0xc2, 0x85]);
  assertState(editor, "ab\uFFFDc", 4);
  // A character cut short by a control byte, not by the chunk's end, is invalid.
  const { events } = feed(editor, [0xe4, 0xbd], [0x0d]);
  assert.deepEqual(events, [{ type: "submit", line: "ab\uFFFDc\uFFFD" }]);
});

Deno.test("LineEditor.feed() swallows bracketed paste markers and submits each pasted line", () => {
  const editor = new LineEditor();
  const { events } = feed(editor, `${PASTE_START}one\r\ntwo\nthree\rfour${PASTE_END}`);
  assert.deepEqual(events, [
    { type: "submit", line: "one" },
    { type: "submit", line: "two" },
    { type: "submit", line: "three" },
  ]);
  assertState(editor, "four", 4);

  const split = new LineEditor();
  const chunks = feed(split, "\x1b[20", "0~one\r", "\ntwo\x1b[2", "01~");
  assert.deepEqual(chunks.events, [{ type: "submit", line: "one" }]);
  assertState(split, "two", 3);
});

Deno.test("LineEditor.feed() inserts pasted control keys as nothing, not as commands", () => {
  const editor = new LineEditor();
  const pasted = feed(editor, `${PASTE_START}a\x03b\tc\x7fd\x1b[Ae\x04\x15f${PASTE_END}`);
  assert.deepEqual(pasted.events, []);
  assertState(editor, "ab cdef", 7);
  const after = feed(editor, "\x03");
  assert.deepEqual(after.events, [{ type: "interrupt" }]);
});

Deno.test("LineEditor.feed() counts a CRLF split across chunks as one Enter", () => {
  const editor = new LineEditor();
  const { events } = feed(editor, "a\r", "\nb\n\n");
  assert.deepEqual(events, [
    { type: "submit", line: "a" },
    { type: "submit", line: "b" },
    { type: "submit", line: "" },
  ]);
});

// ---------------------------------------------------------------------------
// Characters beyond ASCII

Deno.test("LineEditor.feed() edits multi-byte and wide characters as whole characters", () => {
  const pairs = [
    ["ñ", "ü"],
    ["你", "好"],
    ["👨‍👩‍👧", "🏳️‍🌈"],
    ["e\u0301", "n\u0303"],
    ["🇫🇷", "🇩🇪"],
    ["👍🏽", "😀"],
  ];
  for (const [x, y] of pairs) {
    const editor = new LineEditor();
    feed(editor, `a${x}${y}b`);
    assertState(editor, `a${x}${y}b`, 4);
    feed(editor, LEFT);
    assertState(editor, `a${x}${y}b`, 3);
    feed(editor, BACKSPACE);
    assertState(editor, `a${x}b`, 2);
    feed(editor, LEFT, DELETE);
    assertState(editor, "ab", 1);
    feed(editor, y, RIGHT);
    assertState(editor, `a${y}b`, 3);
  }
});

Deno.test("LineEditor.feed() joins a combining accent or ZWJ sequence to the character before", () => {
  const editor = new LineEditor();
  feed(editor, "e", "\u0301");
  assertState(editor, "e\u0301", 1);
  feed(editor, BACKSPACE);
  assertState(editor, "", 0);
  feed(editor, "👨", "\u200d👩");
  assertState(editor, "👨\u200d👩", 1);
  // A ZWJ typed between two emoji joins them; the cursor goes after the whole.
  const between = new LineEditor();
  feed(between, "👨👩", LEFT, "\u200d");
  assertState(between, "👨\u200d👩", 1);
});

// ---------------------------------------------------------------------------
// Deleting ranges

Deno.test("LineEditor.feed() deletes to the line start with Ctrl-U", () => {
  const editor = new LineEditor();
  feed(editor, "hello world", LEFT, LEFT, LEFT, LEFT, LEFT, "\x15");
  assertState(editor, "world", 0);
});

Deno.test("LineEditor.feed() deletes the word before the cursor with Ctrl-W", () => {
  const editor = new LineEditor();
  feed(editor, "say hello  world  ", "\x17");
  assertState(editor, "say hello  ", 11);
  feed(editor, "\x17");
  assertState(editor, "say ", 4);

  const middle = new LineEditor();
  feed(middle, "one two three", LEFT, LEFT, LEFT, LEFT, LEFT, LEFT, "\x17");
  assertState(middle, "one  three", 4);

  const wide = new LineEditor();
  feed(wide, "你好 世界", "\x17");
  assertState(wide, "你好 ", 3);
});

Deno.test("LineEditor.feed() deletes to the line end with Ctrl-K", () => {
  const editor = new LineEditor();
  feed(editor, "hello world", HOME, RIGHT, RIGHT, RIGHT, RIGHT, RIGHT, "\x0b");
  assertState(editor, "hello", 5);
});

// ---------------------------------------------------------------------------
// History

Deno.test("LineEditor.feed() walks history with Up and Down and comes back to the typed line", () => {
  const editor = new LineEditor();
  submit(editor, "one", "two", "three");
  feed(editor, "draft");
  const walk = [UP, UP, "\x1bOA", UP, DOWN, "\x1bOB", DOWN, DOWN];
  const seen = walk.map((key) => {
    feed(editor, key);
    assert.equal(editor.cursor, graphemes(editor.line).length);
    return editor.line;
  });
  assert.deepEqual(seen, ["three", "two", "one", "one", "two", "three", "draft", "draft"]);
});

Deno.test("LineEditor.feed() keeps edits to a recalled line while walking, not in history", () => {
  const editor = new LineEditor();
  submit(editor, "one", "two");
  feed(editor, UP, "!", UP, DOWN);
  assertState(editor, "two!", 4);
  const { events } = feed(editor, "\r");
  assert.deepEqual(events, [{ type: "submit", line: "two!" }]);
  const seen = [UP, UP, UP].map((key) => (feed(editor, key), editor.line));
  assert.deepEqual(seen, ["two!", "two", "one"]);
});

Deno.test("LineEditor.feed() adds only non-empty lines that differ from the last one to history", () => {
  const editor = new LineEditor();
  submit(editor, "a", "b", "b", "", "c");
  const seen = [UP, UP, UP, UP].map((key) => (feed(editor, key), editor.line));
  assert.deepEqual(seen, ["c", "b", "a", "a"]);
});

Deno.test("LineEditor keeps at most historySize history entries", () => {
  const editor = new LineEditor({ historySize: 2 });
  submit(editor, "1", "2", "3");
  const seen = [UP, UP, UP].map((key) => (feed(editor, key), editor.line));
  assert.deepEqual(seen, ["3", "2", "2"]);

  const none = new LineEditor({ historySize: 0 });
  submit(none, "1");
  feed(none, "x", UP);
  assertState(none, "x", 1);
});

// ---------------------------------------------------------------------------
// Events

Deno.test("LineEditor.feed() submits on CR or LF and clears the line", () => {
  const editor = new LineEditor();
  assert.deepEqual(feed(editor, "hi\r").events, [{ type: "submit", line: "hi" }]);
  assertState(editor, "", 0);
  assert.deepEqual(feed(editor, "yo", LEFT, "\n").events, [{ type: "submit", line: "yo" }]);
  assertState(editor, "", 0);
});

Deno.test("LineEditor.feed() reports interrupt on Ctrl-C and keeps the line", () => {
  const editor = new LineEditor();
  editor.render();
  feed(editor, "abc", LEFT);
  const { write, events } = feed(editor, "\x03");
  assert.deepEqual(events, [{ type: "interrupt" }]);
  assert.equal(write, "");
  assertState(editor, "abc", 2);
});

Deno.test("LineEditor.feed() reports eof on Ctrl-D only on an empty line", () => {
  const editor = new LineEditor();
  assert.deepEqual(feed(editor, "\x04").events, [{ type: "eof" }]);
  assert.deepEqual(feed(editor, "abc", HOME, "\x04").events, []);
  assertState(editor, "bc", 0);
  assert.deepEqual(feed(editor, END, "\x04").events, []);
  assertState(editor, "bc", 2);
});

// ---------------------------------------------------------------------------
// What the screen shows

Deno.test("LineEditor.render() draws the prompt at the start of the row", () => {
  const { editor, screen } = setUp(20);
  assertScreen(screen, CHAT, editor);

  const coloured = setUp(20, "\x1b[32mme\x1b[0m> ");
  assert.deepEqual(coloured.screen.lines(), [...CHAT, "me>"]);
  assert.deepEqual(coloured.screen.cursor(), [2, 4]);
});

Deno.test("LineEditor.feed() draws the prompt first when render() was not called", () => {
  const screen = new Screen(20);
  const editor = new LineEditor();
  screen.write(feed(editor, "hi").write);
  assertScreen(screen, [], editor);
});

Deno.test("LineEditor.feed() writes only the typed text when it stays on the row", () => {
  const { editor, screen } = setUp(6);
  for (const [key, write] of [["a", "a"], ["bc", "bc"], [LEFT, "\x1b[1D"], [RIGHT, "\x1b[1C"]]) {
    const out = feed(editor, key);
    assert.equal(out.write, write);
    screen.write(out.write);
  }
  // "d" fills the row: the cursor must go to the next row, so more is written.
  const out = feed(editor, "d");
  assert.notEqual(out.write, "d");
  screen.write(out.write);
  assertScreen(screen, CHAT, editor);
  assert.deepEqual(screen.cursor(), [3, 0]);
});

Deno.test("LineEditor.feed() draws a line longer than the terminal over several rows", () => {
  const { editor, screen } = setUp(10);
  typeOn(screen, editor, "the quick brown fox jumps");
  assert.deepEqual(screen.lines(), [...CHAT, "> the quic", "k brown fo", "x jumps"]);
  assert.deepEqual(screen.cursor(), [4, 7]);
  typeOn(screen, editor, HOME);
  assert.deepEqual(screen.cursor(), [2, 2]);
  typeOn(screen, editor, "A");
  assert.deepEqual(screen.lines(), [...CHAT, "> Athe qui", "ck brown f", "ox jumps"]);
  assert.deepEqual(screen.cursor(), [2, 3]);
  typeOn(screen, editor, "\x0b");
  assert.deepEqual(screen.lines(), [...CHAT, "> A"]);
  assert.deepEqual(screen.cursor(), [2, 3]);
});

Deno.test("LineEditor.feed() moves a wide character that does not fit to the next row", () => {
  const { editor, screen } = setUp(6);
  typeOn(screen, editor, "abc你");
  assert.deepEqual(screen.lines(), [...CHAT, "> abc", "你"]);
  assert.deepEqual(screen.cursor(), [3, 2]);
  typeOn(screen, editor, LEFT);
  assert.deepEqual(screen.cursor(), [3, 0]);
  typeOn(screen, editor, BACKSPACE);
  assert.deepEqual(screen.lines(), [...CHAT, "> ab你"]);
  assert.deepEqual(screen.cursor(), [2, 4]);
});

Deno.test("LineEditor.feed() puts the cursor on the next row when text ends in the last column", () => {
  const { editor, screen } = setUp(6);
  typeOn(screen, editor, "abcd");
  assert.deepEqual(screen.lines(), [...CHAT, "> abcd"]);
  assert.deepEqual(screen.cursor(), [3, 0]);
  typeOn(screen, editor, "e");
  assert.deepEqual(screen.lines(), [...CHAT, "> abcd", "e"]);
  assert.deepEqual(screen.cursor(), [3, 1]);
  typeOn(screen, editor, BACKSPACE, LEFT);
  assert.deepEqual(screen.lines(), [...CHAT, "> abcd"]);
  assert.deepEqual(screen.cursor(), [2, 5]);
});

Deno.test("LineEditor.feed() redraws when typed text joins the character before it", () => {
  // A terminal given "\u200d👩" apart from the "👨" before it draws two emoji, not one.
  const { editor, screen } = setUp(20);
  typeOn(screen, editor, "👨");
  const { write } = feed(editor, "\u200d👩");
  assert.notEqual(write, "\u200d👩");
  screen.write(write);
  typeOn(screen, editor, "x");
  assert.deepEqual(screen.lines(), [...CHAT, "> 👨\u200d👩x"]);
  assert.deepEqual(screen.cursor(), [2, 5]);
});

Deno.test("LineEditor.feed() keeps the screen right through edits of a wrapped line", () => {
  const { editor, screen } = setUp(7);
  const steps = [
    "ab你好cd😀ef",
    HOME,
    RIGHT,
    RIGHT,
    RIGHT,
    "世",
    "e\u0301",
    BACKSPACE,
    BACKSPACE,
    END,
    LEFT,
    LEFT,
    DELETE,
    "\x17",
    "xyz",
    LEFT,
    "\x15",
    "長い行ですね",
    HOME,
    RIGHT,
    "\x0b",
    "ñandú 🇫🇷 flag",
    "\r",
    "again",
    UP,
    UP,
    DOWN,
    "\x0c",
  ];
  for (const step of steps) {
    typeOn(screen, editor, step);
    assertScreen(screen, CHAT, editor);
  }
});

Deno.test("LineEditor.feed() erases a submitted line and draws an empty prompt", () => {
  const { editor, screen } = setUp(10);
  typeOn(screen, editor, "a line over two rows", HOME);
  const events = typeOn(screen, editor, "\r");
  assert.deepEqual(events, [{ type: "submit", line: "a line over two rows" }]);
  assert.deepEqual(screen.lines(), [...CHAT, ">"]);
  assert.deepEqual(screen.cursor(), [2, 2]);
});

Deno.test("LineEditor.feed() redraws the line with Ctrl-L", () => {
  const { editor, screen } = setUp(10);
  typeOn(screen, editor, "hello there", LEFT);
  screen.write("\x1b[1A\rGARBAGE\x1b[1B\x1b[1G"); // something else wrote over the prompt
  assert.notDeepEqual(screen.lines(), [...CHAT, "> hello th", "ere"]);
  typeOn(screen, editor, "\x0c");
  assert.deepEqual(screen.lines(), [...CHAT, "> hello th", "ere"]);
  assert.deepEqual(screen.cursor(), [3, 2]);
});

Deno.test("LineEditor.printAbove() prints a message above a wrapped line being typed", () => {
  const { editor, screen } = setUp(10);
  typeOn(screen, editor, "hello world!", LEFT, LEFT, LEFT);
  const write = editor.printAbove("\x1b[1mbob\x1b[0m: a long message here");
  assert.equal(
    write,
    "\x1b[1A\r\x1b[J\x1b[1mbob\x1b[0m: a long message here\x1b[0m\r\n> hello wo\r\nrld!\x1b[3D",
  );
  screen.write(write);
  assertState(editor, "hello world!", 9);
  assert.deepEqual(screen.lines(), [
    ...CHAT,
    "bob: a lon",
    "g message",
    "here",
    "> hello wo",
    "rld!",
  ]);
  assert.deepEqual(screen.cursor(), [6, 1]);
  // Typing goes on from the same place.
  typeOn(screen, editor, "X");
  assertScreen(screen, [...CHAT, "bob: a lon", "g message", "here"], editor);
});

Deno.test("LineEditor.printAbove() leaves no blank row after text ending in the last column", () => {
  const { editor, screen } = setUp(10);
  typeOn(screen, editor, "hi");
  screen.write(editor.printAbove("0123456789"));
  assert.deepEqual(screen.lines(), [...CHAT, "0123456789", "> hi"]);
  assert.deepEqual(screen.cursor(), [3, 4]);
});

Deno.test("LineEditor.printAbove() removes escape sequences and controls other than colours", () => {
  const editor = new LineEditor();
  editor.render();
  const write = editor.printAbove("a\x1b[2Jb\x1b]0;title\x07c\x1b[31md\x07\re\nf\tg\x1bc\u009b");
  assert.equal(write, "\r\x1b[Jabc\x1b[31mdef\tg\x1b[0m\r\n> ");
});

Deno.test("LineEditor.printAbove() prints only the text when no prompt is drawn", () => {
  const editor = new LineEditor();
  assert.equal(editor.printAbove("welcome"), "\r\x1b[Jwelcome\r\n");
  editor.render();
  editor.clear();
  assert.equal(editor.printAbove("bye"), "\r\x1b[Jbye\r\n");
});

Deno.test("LineEditor.clear() erases the prompt and the typed text", () => {
  const { editor, screen } = setUp(10);
  typeOn(screen, editor, "the quick brown fox", HOME, RIGHT);
  screen.write(editor.clear());
  assert.deepEqual(screen.lines(), CHAT);
  assert.deepEqual(screen.cursor(), [2, 0]);
  // Drawn again, it shows the same line.
  screen.write(editor.render());
  assertScreen(screen, CHAT, editor);
});

Deno.test("LineEditor.resize() redraws a wrapped line for a wider terminal", () => {
  const { editor, screen } = setUp(10);
  typeOn(screen, editor, "the quick brown fox jumps", LEFT, LEFT);
  screen.resize(16);
  screen.write(editor.resize(16));
  assert.deepEqual(screen.lines(), [...CHAT, "> the quick brow", "n fox jumps"]);
  assertScreen(screen, CHAT, editor);
});

Deno.test("LineEditor.resize() redraws for a narrower terminal that reflowed the rows", () => {
  for (const lefts of [0, 5, 20]) {
    const { editor, screen } = setUp(20);
    typeOn(screen, editor, "the quick brown fox jumps over", LEFT.repeat(lefts));
    screen.resize(8);
    screen.write(editor.resize(8));
    assertScreen(screen, CHAT, editor);
  }
});

Deno.test("LineEditor.resize() returns nothing when no prompt is drawn", () => {
  const editor = new LineEditor();
  assert.equal(editor.resize(40), "");
  assert.equal(editor.render(), "\r\x1b[J> ");
});

// ---------------------------------------------------------------------------
// Widths and options

// ---------------------------------------------------------------------------
// Tab completion

const TAB = "\t";
const NAMES = ["ana", "Anabel", "bea", "carlos", "carla", "你好"];
const COMMANDS = ["/help", "/me", "/msg", "/nick", "/quit", "/who"];

/** An editor completing NAMES and COMMANDS, drawn on a screen with two chat lines above. */
function completing(
  columns = 40,
): { editor: LineEditor; screen: Screen; asked: [string, boolean][] } {
  const asked: [string, boolean][] = [];
  const names = chatCompleter(() => NAMES, COMMANDS);
  const complete: Completer = (word, first) => {
    asked.push([word, first]);
    return names(word, first);
  };
  const screen = new Screen(columns, "a: hi\r\nb: yo\r\n");
  const editor = new LineEditor({ columns, complete });
  screen.write(editor.render());
  return { editor, screen, asked };
}

Deno.test("LineEditor: Tab on a unique name at the line start completes it with ': '", () => {
  const { editor, screen, asked } = completing();
  assert.deepEqual(typeOn(screen, editor, "be", TAB), []);
  assert.deepEqual(asked, [["be", true]]);
  assertState(editor, "bea: ", 5);
  assertScreen(screen, CHAT, editor);
  // Then typing goes on after it.
  typeOn(screen, editor, "hola");
  assertState(editor, "bea: hola", 9);
  assertScreen(screen, CHAT, editor);
});

Deno.test("LineEditor: Tab completes a name further on with a space, and a command with a space", () => {
  const { editor, screen, asked } = completing();
  typeOn(screen, editor, "hola ca", LEFT, RIGHT, "rlo", TAB);
  assertState(editor, "hola carlos ", 12);
  typeOn(screen, editor, "y BE", TAB);
  assertState(editor, "hola carlos y bea ", 18);
  assertScreen(screen, CHAT, editor);
  assert.deepEqual(asked, [["carlo", false], ["BE", false]]);

  const other = completing();
  typeOn(other.screen, other.editor, "/ni", TAB, "ana2");
  assertState(other.editor, "/nick ana2", 10);
  typeOn(other.screen, other.editor, "\x15", "/msg an", TAB);
  assertState(other.editor, "/msg ana", 8); // "ana" and "Anabel" share "ana", ignoring case
  typeOn(other.screen, other.editor, "B", TAB);
  assertState(other.editor, "/msg Anabel ", 12); // written as the name is written
  assertScreen(other.screen, CHAT, other.editor);
});

Deno.test("LineEditor: Tab in the middle of a line completes the word before the cursor", () => {
  const { editor, screen, asked } = completing();
  typeOn(screen, editor, "hola b que tal", HOME, RIGHT.repeat(6), TAB);
  assert.deepEqual(asked, [["b", false]]);
  // A space already follows: the cursor steps over it rather than doubling it.
  assertState(editor, "hola bea que tal", 9);
  assertScreen(screen, CHAT, editor);
  typeOn(screen, editor, END, " 你", TAB);
  assertState(editor, "hola bea que tal 你好 ", 20);
  assertScreen(screen, CHAT, editor);
});

Deno.test("LineEditor: Tab on several matches completes what they share; a second Tab lists them", () => {
  const { editor, screen } = completing();
  // "carl" is what "carlos" and "carla" share: the first Tab writes it out.
  assert.deepEqual(typeOn(screen, editor, "c", TAB), []);
  assertState(editor, "carl", 4);
  assertScreen(screen, CHAT, editor);
  // The second lists them, and leaves the line as it is.
  const listed = [{ type: "completions", words: ["carla", "carlos"] }];
  assert.deepEqual(typeOn(screen, editor, TAB), listed);
  assertState(editor, "carl", 4);
  // A third lists them again; after another key, the next Tab completes first.
  assert.deepEqual(typeOn(screen, editor, TAB), listed);
  assert.deepEqual(typeOn(screen, editor, BACKSPACE, TAB), []);
  assertState(editor, "carl", 4);
  assert.deepEqual(typeOn(screen, editor, TAB), listed);
  assert.deepEqual(typeOn(screen, editor, "o", TAB), []);
  assertState(editor, "carlos: ", 8);
  assertScreen(screen, CHAT, editor);
  // Nothing shared beyond the word: the first Tab does nothing, the second lists.
  const other = completing();
  assert.deepEqual(typeOn(other.screen, other.editor, "/m", TAB), []);
  assertState(other.editor, "/m", 2);
  assert.deepEqual(typeOn(other.screen, other.editor, TAB), [
    { type: "completions", words: ["/me", "/msg"] },
  ]);
  assertScreen(other.screen, CHAT, other.editor);
});

Deno.test("LineEditor: Tab with no match, or no completer, changes nothing", () => {
  const { editor, screen } = completing();
  const { write, events } = feed(editor, "zz", TAB, TAB);
  screen.write(write);
  assert.deepEqual(events, []);
  assertState(editor, "zz", 2);
  assertScreen(screen, CHAT, editor);
  const bare = new LineEditor();
  feed(bare, "be", TAB);
  assertState(bare, "be", 2);
  // Pasted tabs stay spaces, never completions.
  const pasting = completing();
  feed(pasting.editor, `${PASTE_START}be\tx${PASTE_END}`);
  assertState(pasting.editor, "be x", 4);
  assert.deepEqual(pasting.asked, []);
});

Deno.test("chatCompleter() offers commands only at the line start, names anywhere, ignoring case", () => {
  const complete = chatCompleter(() => NAMES, COMMANDS);
  assert.deepEqual(complete("A", true), ["ana", "Anabel"]);
  assert.deepEqual(complete("a", false), ["ana", "Anabel"]);
  assert.deepEqual(complete("/Q", true), ["/quit"]);
  assert.deepEqual(complete("/q", false), []);
  assert.deepEqual(complete("", false), ["ana", "Anabel", "bea", "carla", "carlos", "你好"]);
  assert.deepEqual(complete("zz", true), []);
});

Deno.test("displayWidth() counts wide characters, emoji, zero-width marks and escape sequences", () => {
  const cases: [string, number][] = [
    ["", 0],
    ["abc", 3],
    ["ñandú", 5],
    ["你好", 4],
    ["한국어", 6],
    ["ｆｕｌｌ", 8],
    ["😀", 2],
    ["👨‍👩‍👧", 2],
    ["👍🏽", 2],
    ["🇫🇷", 2],
    ["❤", 1],
    ["❤️", 2],
    ["e\u0301", 1],
    ["a\u200bb", 2],
    ["\x1b[1;31mok\x1b[0m", 2],
  ];
  for (const [text, width] of cases) assert.equal(displayWidth(text), width, JSON.stringify(text));
});

Deno.test("LineEditor rejects invalid options", () => {
  for (const columns of [0, -3, 2.5, NaN]) {
    assert.throws(() => new LineEditor({ columns }), RangeError);
    assert.throws(() => new LineEditor().resize(columns), RangeError);
  }
  for (const historySize of [-1, 1.5]) {
    assert.throws(() => new LineEditor({ historySize }), RangeError);
  }
  for (const prompt of ["a\nb> ", "\x1b]0;title\x07> ", "\x1b[2J> ", "\t> "]) {
    assert.throws(() => new LineEditor({ prompt }), TypeError);
  }
});
