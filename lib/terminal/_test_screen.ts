/**
 * A tiny terminal emulator for tests (line_editor_test.ts, console_test.ts),
 * written apart from the editor (its own widths, its own wrapping), so that the
 * tests check what the user would see. Private to lib/: not part of charla.
 *
 * @module
 */

const segmenter = new Intl.Segmenter(undefined, { granularity: "grapheme" });

/** The graphemes of `text`. */
export function graphemes(text: string): string[] {
  return Array.from(segmenter.segment(text), (s) => s.segment);
}

// ---------------------------------------------------------------------------
// A tiny terminal emulator, written apart from the editor (its own widths, its
// own wrapping), so that the tests check what the user would see.

/** Columns a grapheme takes on the emulated terminal. */
export function cellWidth(grapheme: string): number {
  if (/^[\p{M}\u200b-\u200f]/u.test(grapheme)) return 0;
  const code = grapheme.codePointAt(0) ?? 0;
  const wide = (code >= 0x1100 && code <= 0x115f) || (code >= 0x2e80 && code <= 0xa4cf) ||
    (code >= 0xac00 && code <= 0xd7a3) || (code >= 0xff00 && code <= 0xff60) ||
    (code >= 0x1f1e6 && code <= 0x1faff);
  return wide ? 2 : 1;
}

/**
 * Enough of xterm for the editor: printable text with autowrap and the "pending
 * wrap" state, CR, LF, CSI A/B/C/D/G/J/K (and SGR, ignored), wide characters in two
 * cells. The prompt sits at the bottom of the screen, so moving down stops at the
 * last row; anything else the editor writes makes the emulator throw.
 */
export class Screen {
  columns: number;
  /** Cells by row: a grapheme, " " when blank, "" for the right half of a wide one. */
  cells: string[][] = [];
  /** Whether each row was reached by autowrap: those rejoin the row above on reflow. */
  soft: boolean[] = [];
  row = 0;
  col = 0;
  /** After printing in the last column the cursor stays there; the next character wraps. */
  pendingWrap = false;

  constructor(columns: number, text = "") {
    this.columns = columns;
    this.#addRow(false);
    this.write(text);
  }

  write(data: string): void {
    // deno-lint-ignore no-control-regex
    const tokens = /\x1b\[([0-9;?]*)([@-~])|([\x00-\x1f\x7f])|([^\x00-\x1f\x7f]+)/gs;
    for (const [, params, final, control, text] of data.matchAll(tokens)) {
      if (final !== undefined) this.#csi(params, final);
      else if (control === "\r") this.#carriageReturn();
      else if (control === "\n") this.#lineFeed();
      else if (control !== undefined) {
        throw new Error(`Unexpected control ${JSON.stringify(control)}`);
      } else for (const grapheme of graphemes(text)) this.#print(grapheme);
    }
  }

  /** Rows as text, trailing blanks and blank rows at the bottom left out. */
  lines(): string[] {
    const lines = this.cells.map((cells) => cells.join("").trimEnd());
    while (lines.length > 0 && lines.at(-1) === "") lines.pop();
    return lines;
  }

  /** The cursor as [row, column]. */
  cursor(): [number, number] {
    return [this.row, this.col];
  }

  /**
   * A window resize, reflowing like VTE, kitty or iTerm2: rows joined by autowrap
   * rejoin, every line wraps anew at the new width, the cursor stays on its cell.
   */
  resize(columns: number): void {
    const lines: { cells: string[]; cursor?: number }[] = [];
    this.cells.forEach((cells, r) => {
      if (r === 0 || !this.soft[r]) lines.push({ cells: [] });
      const line = lines[lines.length - 1];
      if (r === this.row) line.cursor = line.cells.length + this.col;
      line.cells.push(...cells);
    });
    this.columns = columns;
    this.cells = [];
    this.soft = [];
    this.pendingWrap = false;
    for (const line of lines) {
      let end = line.cells.length;
      while (end > 0 && line.cells[end - 1] === " ") end--;
      this.#addRow(false);
      let col = 0;
      for (let i = 0; i < end; i++) {
        if (line.cells[i] === "") continue;
        const width = line.cells[i + 1] === "" ? 2 : 1;
        if (col + width > columns) {
          this.#addRow(true);
          col = 0;
        }
        if (i === line.cursor) [this.row, this.col] = [this.cells.length - 1, col];
        this.cells[this.cells.length - 1][col] = line.cells[i];
        if (width === 2) this.cells[this.cells.length - 1][col + 1] = "";
        col += width;
      }
      if (line.cursor !== undefined && line.cursor >= end) {
        col += line.cursor - end;
        while (col >= columns) {
          this.#addRow(true);
          col -= columns;
        }
        [this.row, this.col] = [this.cells.length - 1, col];
      }
    }
  }

  #addRow(soft: boolean): void {
    this.cells.push(Array(this.columns).fill(" "));
    this.soft.push(soft);
  }

  #carriageReturn(): void {
    this.col = 0;
    this.pendingWrap = false;
  }

  #lineFeed(): void {
    if (this.row === this.cells.length - 1) this.#addRow(false);
    this.row++;
    this.pendingWrap = false;
  }

  #csi(params: string, final: string): void {
    const n = params === "" ? 1 : Number(params);
    const row = this.cells[this.row];
    switch (final) {
      case "A":
        this.row = Math.max(0, this.row - n);
        break;
      case "B":
        this.row = Math.min(this.cells.length - 1, this.row + n);
        break;
      case "C":
        this.col = Math.min(this.columns - 1, this.col + n);
        break;
      case "D":
        this.col = Math.max(0, this.col - n);
        break;
      case "G":
        this.col = Math.min(this.columns - 1, n - 1);
        break;
      case "J":
      case "K":
        if (params !== "" && params !== "0") throw new Error(`Unexpected CSI ${params}${final}`);
        row.fill(" ", this.col);
        if (this.col > 0 && row[this.col - 1] !== "" && cellWidth(row[this.col - 1]) === 2) {
          row[this.col - 1] = " "; // a wide character cut in half is erased
        }
        if (final === "J") {
          for (let r = this.row + 1; r < this.cells.length; r++) {
            this.cells[r].fill(" ");
            this.soft[r] = false;
          }
        }
        return;
      case "m":
        return;
      default:
        throw new Error(`Unexpected CSI ${params}${final}`);
    }
    this.pendingWrap = false;
  }

  #print(grapheme: string): void {
    const width = cellWidth(grapheme);
    const row = this.cells[this.row];
    if (width === 0) {
      // Combining marks join the character before the cursor.
      let c = this.pendingWrap ? this.col : this.col - 1;
      while (c > 0 && row[c] === "") c--;
      if (c >= 0) row[c] += grapheme;
      return;
    }
    if (this.pendingWrap || this.col + width > this.columns) {
      if (this.row === this.cells.length - 1) this.#addRow(true);
      else this.soft[this.row + 1] = true;
      this.row++;
      this.col = 0;
      this.pendingWrap = false;
    }
    this.#setCell(this.col, grapheme);
    if (width === 2) this.#setCell(this.col + 1, "");
    this.col += width;
    if (this.col >= this.columns) {
      this.col = this.columns - 1;
      this.pendingWrap = true;
    }
  }

  /** Writes one cell; overwriting half of a wide character erases the other half. */
  #setCell(col: number, value: string): void {
    const row = this.cells[this.row];
    if (row[col] === "" && col > 0) row[col - 1] = " ";
    if (row[col] !== "" && row[col + 1] === "") row[col + 1] = " ";
    row[col] = value;
  }
}
