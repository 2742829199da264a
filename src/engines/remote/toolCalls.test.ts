import assert from "node:assert/strict";
import { test } from "node:test";
import { InlineToolCalls, parseDeepSeekBlock, parseHermesBlock, StreamedToolCalls, ToolCallCounter } from "./toolCalls.ts";

type Out = Array<["content", string] | ["call", number, string, string] | ["args", number, string]>;

function harness() {
  const out: Out = [];
  const counter = new ToolCallCounter({
    call: (index, id, name) => out.push(["call", index, id, name]),
    arguments: (index, text) => out.push(["args", index, text]),
  });
  const inline = new InlineToolCalls((text) => out.push(["content", text]), counter);
  return { out, counter, inline };
}

/** Content joined, and each call as [name, joined arguments] (ids checked apart). */
function summary(out: Out) {
  const calls: Array<[string, string]> = [];
  let content = "";
  for (const item of out) {
    if (item[0] === "content") content += item[1];
    else if (item[0] === "call") calls[item[1]] = [item[3], ""];
    else calls[item[1]]![1] += item[2];
  }
  return { content, calls };
}

/** Feeds `text` in pieces of every size from 1 to 7 characters: the result must not depend on the cut. */
function feedInPieces(text: string, size: number) {
  const h = harness();
  for (let i = 0; i < text.length; i += size) h.inline.push(text.slice(i, i + size));
  h.inline.flush();
  return h;
}

const DS = {
  callsBegin: "<｜tool▁calls▁begin｜>",
  callsEnd: "<｜tool▁calls▁end｜>",
  callBegin: "<｜tool▁call▁begin｜>",
  callEnd: "<｜tool▁call▁end｜>",
  sep: "<｜tool▁sep｜>",
};
const r1Call = (name: string, args: string) => `${DS.callBegin}function${DS.sep}${name}\n\`\`\`json\n${args}\n\`\`\`${DS.callEnd}`;

test("Qwen/Hermes inline calls become real calls, cut anywhere; text around them stays content", () => {
  const text =
    'Let me check.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>\n<tool_call>\n{"name": "get_time", "arguments": {"timezone": "Europe/Paris"}}\n</tool_call>';
  for (let size = 1; size <= 7; size++) {
    const { out, counter } = feedInPieces(text, size);
    assert.deepEqual(summary(out), {
      content: "Let me check.\n\n",
      calls: [
        ["get_weather", '{"city":"Paris"}'],
        ["get_time", '{"timezone":"Europe/Paris"}'],
      ],
    });
    assert.equal(counter.count, 2);
    for (const item of out) if (item[0] === "call") assert.match(item[2], /^call_[0-9a-f]{24}$/);
  }
});

test("DeepSeek R1/V3 inline calls (fenced JSON) and V3.1 calls (NAME<sep>ARGS), cut anywhere", () => {
  const r1 = `${DS.callsBegin}${r1Call("get_weather", '{"city": "Paris"}')}\n${r1Call("get_time", '{"timezone": "Europe/Paris"}')}${DS.callsEnd}`;
  const v31 = `${DS.callsBegin}${DS.callBegin}get_weather${DS.sep}{"city": "Paris"}${DS.callEnd}${DS.callsEnd}`;
  for (let size = 1; size <= 7; size++) {
    assert.deepEqual(summary(feedInPieces(r1, size).out), {
      content: "",
      calls: [
        ["get_weather", '{"city": "Paris"}'],
        ["get_time", '{"timezone": "Europe/Paris"}'],
      ],
    });
    assert.deepEqual(summary(feedInPieces(v31, size).out), { content: "", calls: [["get_weather", '{"city": "Paris"}']] });
  }
});

test("a malformed block is returned verbatim as content, and counts no call", () => {
  const broken = `${DS.callsBegin}${r1Call("get_weather", '{"city": "Paris"')}${DS.callsEnd}`;
  const badJson = '<tool_call>\n{"name": "get_weather", "arguments": {"city": }\n</tool_call>';
  const noName = '<tool_call>{"arguments": {}}</tool_call>';
  const arrayArgs = '<tool_call>{"name": "f", "arguments": [1]}</tool_call>';
  for (const text of [broken, badJson, noName, arrayArgs, `Before ${broken} after`]) {
    const { out, counter, inline } = feedInPieces(text, 3);
    assert.deepEqual(summary(out), { content: text, calls: [] }, text);
    assert.equal(counter.count, 0);
    assert.equal(inline.calls, 0);
  }
  // H1's malformed script: a call without the section opener is plain text, never a call.
  const bare = `${r1Call("get_weather", '{"city": "Paris"')}`;
  assert.deepEqual(summary(feedInPieces(bare, 4).out), { content: bare, calls: [] });
});

test("a block still open when the answer ends is parsed as it stands; a lone '<' is just text", () => {
  const unclosed = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n';
  assert.deepEqual(summary(feedInPieces(unclosed, 5).out), { content: "", calls: [["get_weather", '{"city":"Paris"}']] });
  const truncated = '<tool_call>\n{"name": "get_weather", "argu';
  assert.deepEqual(summary(feedInPieces(truncated, 5).out), { content: truncated, calls: [] });
  assert.deepEqual(summary(feedInPieces("a < b and <tool and <｜x", 2).out), { content: "a < b and <tool and <｜x", calls: [] });
});

test("the block parsers on their own", () => {
  assert.deepEqual(parseHermesBlock('{"name":"f","arguments":"{\\"a\\": 1}"}'), [{ name: "f", arguments: '{"a": 1}' }], "arguments as a JSON string");
  assert.deepEqual(parseHermesBlock('{"name":"f","parameters":{"a":1}}'), [{ name: "f", arguments: '{"a":1}' }], "Llama's `parameters`");
  assert.deepEqual(parseHermesBlock('{"name":"f"}'), [{ name: "f", arguments: "{}" }]);
  assert.equal(parseHermesBlock("not json"), null);
  assert.equal(parseDeepSeekBlock(""), null, "a section with no call");
  assert.equal(parseDeepSeekBlock(`junk${r1Call("f", "{}")}`), null, "text inside the section");
  assert.deepEqual(parseDeepSeekBlock(r1Call("f", "{}")), [{ name: "f", arguments: "{}" }]);
});

test("streamed tool_calls deltas: numbered in order, name first, arguments held until the name is known, ids kept or made", () => {
  const { out, counter } = harness();
  const streamed = new StreamedToolCalls(counter);
  streamed.push([{ index: 0, id: "call_a", type: "function", function: { name: "get_weather", arguments: "" } }]);
  streamed.push([{ index: 0, function: { arguments: '{"city"' } }]);
  streamed.push([{ index: 0, function: { arguments: ': "Paris"}' } }]);
  // An upstream that sends arguments before the name, and no id.
  streamed.push([{ index: 1, function: { arguments: '{"timezone": ' } }]);
  streamed.push([{ index: 1, function: { name: "get_time", arguments: '"Europe/Paris"}' } }]);
  assert.deepEqual(summary(out), {
    content: "",
    calls: [
      ["get_weather", '{"city": "Paris"}'],
      ["get_time", '{"timezone": "Europe/Paris"}'],
    ],
  });
  const ids = out.filter((o) => o[0] === "call").map((o) => o[2]);
  assert.equal(ids[0], "call_a");
  assert.match(ids[1]!, /^call_[0-9a-f]{24}$/);
  assert.equal(counter.count, 2);
});

test("streamed and inline calls share one numbering", () => {
  const { out, counter, inline } = harness();
  new StreamedToolCalls(counter).push([{ index: 5, id: "x", function: { name: "first", arguments: "{}" } }]);
  inline.push('<tool_call>{"name": "second", "arguments": {}}</tool_call>');
  inline.flush();
  assert.deepEqual(
    out.filter((o) => o[0] === "call").map((o) => [o[1], o[3]]),
    [
      [0, "first"],
      [1, "second"],
    ],
  );
});
