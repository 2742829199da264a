/**
 * A reader for the samples of Prometheus's text exposition format (version 0.0.4, and the
 * OpenMetrics text that shares its sample lines), enough to take a few gauges from an engine's
 * `/metrics`. Written here rather than taken from npm: the one parser there
 * (`parse-prometheus-text-format`) is untyped, unmaintained, and groups whole families with
 * histogram and summary handling that a load signal never needs; the sample grammar is small and
 * fully specified (name, optional `{label="value",…}` with `\\`, `\"` and `\n` escapes, a float
 * that may be `NaN`/`+Inf`/`-Inf`, an optional timestamp). Lines it cannot read are skipped, not
 * fatal: an engine that adds a new kind of line must not blind the gateway to the rest.
 */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*/;

export interface Exposition {
  /** Every sample, in order; unreadable lines are left out. */
  samples: Sample[];
  /** Metric families declared by `# TYPE name type` lines (a family may be declared with no sample yet). */
  types: Map<string, string>;
}

export function parsePrometheusText(text: string): Exposition {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "") continue;
    if (line.startsWith("#")) {
      const declared = /^#\s+TYPE\s+([a-zA-Z_:][a-zA-Z0-9_:]*)\s+(\w+)/.exec(line);
      if (declared) types.set(declared[1]!, declared[2]!);
      continue;
    }
    const sample = parseLine(line);
    if (sample) samples.push(sample);
  }
  return { samples, types };
}

function parseLine(line: string): Sample | null {
  const name = NAME.exec(line)?.[0];
  if (!name) return null;
  let i = name.length;
  const labels: Record<string, string> = {};
  if (line[i] === "{") {
    i++;
    for (;;) {
      while (line[i] === " ") i++;
      if (line[i] === "}") {
        i++;
        break;
      }
      const labelName = LABEL_NAME.exec(line.slice(i))?.[0];
      if (!labelName) return null;
      i += labelName.length;
      while (line[i] === " ") i++;
      if (line[i] !== "=") return null;
      i++;
      while (line[i] === " ") i++;
      if (line[i] !== '"') return null;
      i++;
      let value = "";
      for (;;) {
        const c = line[i];
        if (c === undefined) return null; // unterminated value
        if (c === '"') break;
        if (c === "\\") {
          const next = line[i + 1];
          value += next === "n" ? "\n" : (next ?? "");
          i += 2;
        } else {
          value += c;
          i++;
        }
      }
      i++; // closing quote
      labels[labelName] = value;
      while (line[i] === " ") i++;
      if (line[i] === ",") i++;
      else if (line[i] !== "}") return null;
    }
  }
  // OpenMetrics may follow a sample with ` # {…} value` (an exemplar): not part of the sample.
  const rest = line.slice(i).split(" # ")[0]!.trim().split(/\s+/);
  if (rest.length < 1 || rest.length > 2 || rest[0] === "") return null;
  const value = parseValue(rest[0]!);
  if (value === null) return null;
  return { name, labels, value };
}

function parseValue(text: string): number | null {
  switch (text) {
    case "NaN":
      return NaN;
    case "+Inf":
    case "Inf":
      return Infinity;
    case "-Inf":
      return -Infinity;
  }
  // Number("") and Number("0x10") would accept what the format does not: only decimal floats.
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) return null;
  return Number(text);
}
