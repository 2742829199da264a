import type { Kysely } from "kysely";

// Documents (issue 15) are stored in the database, per user: a plan may say how many bytes of
// them its users keep (`stored_bytes_quota`). Null leaves it to the server-wide default
// (`documents.maxStoredBytesPerUser`): the bytes are on the operator's disk, so there is always a
// bound. Existing plans keep null, i.e. that default.

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable("plans").addColumn("stored_bytes_quota", "bigint").execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable("plans").dropColumn("stored_bytes_quota").execute();
}
