/**
 * The version of charla, read from deno.json when the module is loaded (an import,
 * so it needs no read permission and is built into compiled binaries).
 *
 * @module
 */

import config from "../deno.json" with { type: "json" };

/** The version from deno.json, such as `0.1.0`. */
export const VERSION: string = config.version;
