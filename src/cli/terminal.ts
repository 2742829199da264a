/**
 * What the CLI writes to a terminal, and how it behaves when stdout is not one.
 * - Colour only on a TTY, and never when NO_COLOR is set to anything non-empty (https://no-color.org):
 *   escape codes in a file or a pipe are noise.
 * - A closed pipe (`sputnik chat … | head`) is the reader saying "enough": stop quietly, as `cat`
 *   does, instead of dying on an unhandled EPIPE with a stack trace.
 */
export interface Style {
  dim(text: string): string;
  /** Starts dim text that runs until `reset` (streamed reasoning arrives in pieces). */
  readonly dimStart: string;
  readonly reset: string;
}

export function colourWanted(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): boolean {
  return Boolean(stream.isTTY) && !env.NO_COLOR;
}

export function styleFor(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): Style {
  if (!colourWanted(stream, env)) return { dim: (text) => text, dimStart: "", reset: "" };
  return { dim: (text) => `\x1b[2m${text}\x1b[0m`, dimStart: "\x1b[2m", reset: "\x1b[0m" };
}

/** Exits with status 0 as soon as stdout's reader goes away; other stdout errors still surface. */
export function exitQuietlyOnClosedPipe(stream: NodeJS.WriteStream = process.stdout): void {
  stream.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code === "EPIPE") process.exit(0);
    throw error;
  });
}
