import assert from "node:assert/strict";
import { test } from "node:test";
import { StopText } from "./stopText.ts";

function run(stops: string[], pieces: string[]): { out: string[]; stopped: boolean; rest: string } {
  const stop = new StopText(stops);
  const out = pieces.map((p) => stop.push(p));
  return { out, stopped: stop.stopped, rest: stop.flush() };
}

test("text that cannot begin a stop sequence is released at once", () => {
  assert.deepEqual(run(["END"], ["ab", "cd"]), { out: ["ab", "cd"], stopped: false, rest: "" });
});

test("a possible beginning is held until it is decided", () => {
  assert.deepEqual(run(["END"], ["abE", "N", "x"]), { out: ["ab", "", "ENx"], stopped: false, rest: "" });
  assert.deepEqual(run(["END"], ["abE"]), { out: ["ab"], stopped: false, rest: "E" });
});

test("a stop sequence split over pieces ends the text before it; later text is dropped", () => {
  assert.deepEqual(run(["END"], ["abE", "ND tail", "more"]), { out: ["ab", "", ""], stopped: true, rest: "" });
});

test("the earliest of several stop sequences wins", () => {
  assert.deepEqual(run(["c", "ab"], ["xabc"]), { out: ["x"], stopped: true, rest: "" });
});

test("no stop sequences: everything passes", () => {
  assert.deepEqual(run([], ["a", "b"]), { out: ["a", "b"], stopped: false, rest: "" });
});
