import assert from "node:assert/strict";
import { test } from "node:test";
import { effectiveLoad, readLoadSignals } from "./loadSignals.ts";
import { parsePrometheusText } from "./promText.ts";

test("the text format: labels with escapes, special values, timestamps and exemplars; unreadable lines are skipped", () => {
  const { samples, types } = parsePrometheusText(
    [
      "# HELP a_metric Some help with {braces} and \"quotes\"",
      "# TYPE a_metric gauge",
      'a_metric{path="/v1",note="say \\"hi\\"\\nand \\\\ go",} 3.5 1712000000000',
      "plain_total 1e3",
      'nan_gauge{x="1"} NaN',
      "inf_gauge +Inf",
      'hist_bucket{le="0.5"} 7 # {trace_id="abc"} 0.4 1712000000',
      "colon:name:here 2",
      "broken{label=unquoted} 1",
      'unterminated{a="b} 1',
      "no_value",
      "hex_value 0x10",
      "",
      "# EOF",
    ].join("\n"),
  );
  assert.deepEqual(
    samples.map((s) => [s.name, s.labels, s.value]),
    [
      ["a_metric", { path: "/v1", note: 'say "hi"\nand \\ go' }, 3.5],
      ["plain_total", {}, 1000],
      ["nan_gauge", { x: "1" }, NaN],
      ["inf_gauge", {}, Infinity],
      ["hist_bucket", { le: "0.5" }, 7],
      ["colon:name:here", {}, 2],
    ],
  );
  assert.deepEqual([...types], [["a_metric", "gauge"]]);
});

/**
 * Imitates vLLM's /metrics output (text format 0.0.4 from prometheus_client, gauge names from
 * vLLM's "Production Metrics" docs), with two data-parallel engines and one other served model.
 */
const VLLM = `# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="deepseek-r1"} 5.0
vllm:num_requests_running{engine="1",model_name="deepseek-r1"} 3.0
vllm:num_requests_running{engine="0",model_name="other"} 40.0
# HELP vllm:num_requests_waiting Number of requests waiting to be processed.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="deepseek-r1"} 2.0
vllm:num_requests_waiting{engine="1",model_name="deepseek-r1"} 0.0
# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{engine="0",model_name="deepseek-r1"} 0.42
vllm:kv_cache_usage_perc{engine="1",model_name="deepseek-r1"} 0.61
`;

test("vLLM: running and waiting add up over its engines, KV usage is the fullest engine's, other models are left out", () => {
  assert.deepEqual(readLoadSignals(parsePrometheusText(VLLM), "deepseek-r1"), { source: "vllm", waiting: 2, running: 8, kvUsage: 0.61 });
  // Older vLLM names its KV gauge gpu_cache_usage_perc; one served alias: taken as this model.
  const old = 'vllm:num_requests_waiting{model_name="alias"} 4\nvllm:gpu_cache_usage_perc{model_name="alias"} 0.99\n';
  assert.deepEqual(readLoadSignals(parsePrometheusText(old), "deepseek-r1"), { source: "vllm", waiting: 4, running: null, kvUsage: 0.99 });
});

test("SGLang counts each tensor-parallel engine once; llama-server and Sputnik names are read", () => {
  const sglang = [
    'sglang:num_queue_reqs{model_name="m",tp_rank="0"} 6',
    'sglang:num_queue_reqs{model_name="m",tp_rank="1"} 6',
    'sglang:num_running_reqs{model_name="m",tp_rank="0"} 16',
    'sglang:num_running_reqs{model_name="m",tp_rank="1"} 16',
    'sglang:token_usage{model_name="m",tp_rank="0"} 0.28',
  ].join("\n");
  assert.deepEqual(readLoadSignals(parsePrometheusText(sglang), "m"), { source: "sglang", waiting: 6, running: 16, kvUsage: 0.28 });
  const llama = "llamacpp:requests_processing 2\nllamacpp:requests_deferred 1\nllamacpp:kv_cache_usage_ratio 0.5\nllamacpp:prompt_tokens_total 100\n";
  assert.deepEqual(readLoadSignals(parsePrometheusText(llama), "whatever"), { source: "llamacpp", waiting: 1, running: 2, kvUsage: 0.5 });
  const sputnik = 'sputnik_queue_length{model="scripted"} 3\nsputnik_active_sequences{model="scripted"} 2\nsputnik_active_sequences{model="other"} 1\nsputnik_queue_length{model="other"} 9\n';
  assert.deepEqual(readLoadSignals(parsePrometheusText(sputnik), "scripted"), { source: "sputnik", waiting: 3, running: 2, kvUsage: null });
  // A Sputnik node lists a model's queue once it had a request: declared with no sample for it is idle,
  // and another model's figures are never taken for it.
  const fresh = '# TYPE sputnik_queue_length gauge\n# TYPE sputnik_active_sequences gauge\nsputnik_active_sequences{model="other"} 2\n';
  assert.deepEqual(readLoadSignals(parsePrometheusText(fresh), "scripted"), { source: "sputnik", waiting: 0, running: 0, kvUsage: null });
  assert.equal(readLoadSignals(parsePrometheusText("process_cpu_seconds_total 1\n"), "m"), null, "no known gauge: no signals");
});

test("effective load: the engine's own count beyond this gateway's, corrected by this gateway's starts since the reading", () => {
  const signals = { source: "vllm" as const, waiting: 10, running: 4, kvUsage: 0.2 };
  assert.equal(effectiveLoad(3, 3, null), 3, "no reading: in-flight only");
  assert.equal(effectiveLoad(3, 3, { signals, ownInFlightAtRead: 2 }), 15, "14 at the engine, one more sent since");
  assert.equal(effectiveLoad(20, 1, { signals, ownInFlightAtRead: 1 }), 20, "the shared in-flight count when it is larger");
  assert.equal(effectiveLoad(2, 2, { signals: { ...signals, waiting: 1, running: null }, ownInFlightAtRead: 2 }), 3, "no running figure: this gateway's requests count as running");
  assert.equal(effectiveLoad(2, 2, { signals: { ...signals, waiting: null, running: null }, ownInFlightAtRead: 0 }), 2);
});
