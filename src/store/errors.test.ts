import assert from "node:assert/strict";
import { test } from "node:test";
import { ServiceError } from "../errors.ts";
import { classifyDatabaseError, DatabaseUnavailableError, toDatabaseError } from "./errors.ts";

const withCode = (code: string, message = "x") => Object.assign(new Error(message), { code });

test("connection failures of every driver are classified as unavailable", () => {
  const unavailable: unknown[] = [
    withCode("ECONNREFUSED", "connect ECONNREFUSED 127.0.0.1:5432"),
    withCode("ECONNRESET"),
    withCode("ETIMEDOUT"),
    withCode("ENOTFOUND", "getaddrinfo ENOTFOUND db"),
    // node's happy-eyeballs connect: one error per address tried
    new AggregateError([withCode("ECONNREFUSED"), withCode("ECONNREFUSED")], ""),
    withCode("57P01", "terminating connection due to administrator command"),
    withCode("57P02"),
    withCode("57P03", "the database system is starting up"),
    withCode("08006"),
    withCode("08001"),
    withCode("53300", "sorry, too many clients already"),
    withCode("57014", "canceling statement due to statement timeout"),
    new Error("Connection terminated unexpectedly"),
    new Error("Connection terminated due to connection timeout"),
    new Error("timeout exceeded when trying to connect"),
    new Error("Query read timeout"),
    new Error("Client has encountered a connection error and is not queryable"),
    withCode("SQLITE_BUSY", "database is locked"),
    // wrapped by someone else
    new Error("could not settle", { cause: withCode("ECONNREFUSED") }),
    new DatabaseUnavailableError(),
  ];
  for (const error of unavailable) assert.equal(classifyDatabaseError(error), "unavailable", String((error as Error).message || (error as { code?: string }).code));
});

test("query errors, our own bugs and other service errors are not", () => {
  const others: unknown[] = [
    withCode("23505", "duplicate key value violates unique constraint"),
    withCode("42P01", 'relation "users" does not exist'),
    withCode("40001", "could not serialize access"),
    withCode("SQLITE_CONSTRAINT_UNIQUE"),
    new TypeError("Cannot read properties of undefined"),
    new ServiceError("rate_limited", "slow down", { cause: withCode("ECONNREFUSED") }),
    null,
    undefined,
    "ECONNREFUSED",
  ];
  for (const error of others) assert.equal(classifyDatabaseError(error), null, String(error));
});

test("toDatabaseError turns connection failures into a retryable ServiceError and leaves the rest alone", () => {
  const cause = withCode("57P01", "terminating connection due to administrator command");
  const converted = toDatabaseError(cause);
  assert.ok(converted instanceof DatabaseUnavailableError);
  assert.ok(converted instanceof ServiceError);
  assert.equal(converted.kind, "unavailable");
  assert.equal(converted.code, "database_unavailable");
  assert.ok((converted.retryAfterS ?? 0) >= 1);
  assert.equal(converted.cause, cause);
  assert.doesNotMatch(converted.message, /administrator/, "driver details stay in the cause, out of client responses");
  assert.equal(toDatabaseError(converted), converted);
  const constraint = withCode("23505");
  assert.equal(toDatabaseError(constraint), constraint);
});
