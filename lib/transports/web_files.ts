/**
 * The web page's files (web/), built into the program: imported as text, so
 * the server needs no permission to read them and `deno compile` carries them.
 * Text imports are still marked unstable in Deno 2.9: deno.json turns them on
 * (`"unstable": ["raw-imports"]`) for every command run in this project.
 *
 * @module
 */

import index from "../../web/index.html" with { type: "text" };
import app from "../../web/app.js" with { type: "text" };
import format from "../../web/format.js" with { type: "text" };
import style from "../../web/style.css" with { type: "text" };

/** One file of the page: its path on the server, its media type and its text. */
export interface PageFile {
  /** Where it is served: `/`, `/app.js`. */
  readonly path: string;
  /** The Content-Type header. */
  readonly type: string;
  readonly text: string;
}

/** Every file of the page; nothing else is served. */
export const PAGE_FILES: readonly PageFile[] = [
  { path: "/", type: "text/html; charset=utf-8", text: index },
  { path: "/app.js", type: "text/javascript; charset=utf-8", text: app },
  { path: "/format.js", type: "text/javascript; charset=utf-8", text: format },
  { path: "/style.css", type: "text/css; charset=utf-8", text: style },
];
