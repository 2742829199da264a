import type { Kysely } from "kysely";

// Model audits (src/audit): a run asks a versioned suite of questions to one or more models and
// stores every answer as it arrives, so an interrupted run resumes where it stopped and its report
// can be rebuilt at any time from the database alone. The run keeps the suite it ran (only the
// questions it asked) and the classifier ids it used: both are part of the result, and a later
// suite or classifier version must not silently change the numbers of an old run.

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable("audit_runs")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("suite_id", "text", (c) => c.notNull())
    .addColumn("suite_version", "text", (c) => c.notNull())
    .addColumn("suite_title", "text", (c) => c.notNull())
    // The suite as run (its topics and the questions the filter kept), as JSON.
    .addColumn("suite", "text", (c) => c.notNull())
    // JSON array of model ids, in the order asked.
    .addColumn("models", "text", (c) => c.notNull())
    // JSON array of classifier ids ("rules@1", "judge@1:<model>").
    .addColumn("classifiers", "text", (c) => c.notNull())
    // JSON object: filter, samples, temperature, judge, concurrency, maxTokens, how models were reached.
    .addColumn("settings", "text", (c) => c.notNull())
    .addColumn("status", "text", (c) => c.notNull())
    // Answers the run asks for in all (models × questions × samples).
    .addColumn("total", "integer", (c) => c.notNull())
    .addColumn("error", "text")
    // Null when started from the command line.
    .addColumn("created_by", "text")
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .addColumn("updated_at", "bigint", (c) => c.notNull())
    // Renewed while a process runs it: a "running" run whose heartbeat stopped was interrupted.
    .addColumn("heartbeat_at", "bigint")
    .addColumn("finished_at", "bigint")
    .execute();
  await db.schema.createIndex("audit_runs_created_idx").on("audit_runs").columns(["created_at", "id"]).execute();

  await db.schema
    .createTable("audit_answers")
    .addColumn("run_id", "text", (c) => c.notNull().references("audit_runs.id").onDelete("cascade"))
    .addColumn("model", "text", (c) => c.notNull())
    .addColumn("question_id", "text", (c) => c.notNull())
    .addColumn("sample", "integer", (c) => c.notNull())
    .addColumn("answer", "text", (c) => c.notNull().defaultTo(""))
    .addColumn("reasoning", "text", (c) => c.notNull().defaultTo(""))
    // The rule-based classifier's verdicts: of the answer, of the reasoning, the retraction flag,
    // and why (a JSON array of lines), with the classifier's id.
    .addColumn("rule_class", "text")
    .addColumn("rule_reasoning_class", "text")
    .addColumn("retracted", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("rule_explanation", "text", (c) => c.notNull().defaultTo("[]"))
    .addColumn("rule_classifier", "text")
    // The judge model's verdicts (of the answer, of the reasoning, the retraction flag), the
    // one-line reason of the answer's verdict, all its reasons (JSON array) and its classifier id.
    // Null class: no judge, or not judged yet; "unparsed": the judge's reply held no verdict.
    .addColumn("judge_class", "text")
    .addColumn("judge_reasoning_class", "text")
    .addColumn("judge_retracted", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("judge_reason", "text")
    .addColumn("judge_explanation", "text", (c) => c.notNull().defaultTo("[]"))
    .addColumn("judge_classifier", "text")
    .addColumn("finish_reason", "text")
    .addColumn("prompt_tokens", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("completion_tokens", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("reasoning_tokens", "integer", (c) => c.notNull().defaultTo(0))
    // Why no answer could be had (a resumed run asks again).
    .addColumn("error", "text")
    .addColumn("created_at", "bigint", (c) => c.notNull())
    // One row per asked question: a resumed run can never store an answer twice.
    .addPrimaryKeyConstraint("audit_answers_pk", ["run_id", "model", "question_id", "sample"])
    .execute();

  // The summary an admin chose to show users for one model of one run (what /api/models serves).
  await db.schema
    .createTable("audit_publications")
    .addColumn("run_id", "text", (c) => c.notNull().references("audit_runs.id").onDelete("cascade"))
    .addColumn("model", "text", (c) => c.notNull())
    // JSON: the figures shown, computed once when published.
    .addColumn("summary", "text", (c) => c.notNull())
    .addColumn("published_by", "text")
    .addColumn("published_at", "bigint", (c) => c.notNull())
    .addPrimaryKeyConstraint("audit_publications_pk", ["run_id", "model"])
    .execute();
  await db.schema.createIndex("audit_publications_model_idx").on("audit_publications").columns(["model", "published_at"]).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable("audit_publications").execute();
  await db.schema.dropTable("audit_answers").execute();
  await db.schema.dropTable("audit_runs").execute();
}
