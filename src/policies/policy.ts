import type { Actor, AnonymousActor, UserActor } from "../auth/actor.ts";
import { ServiceError } from "../errors.ts";

/**
 * The machinery behind `authorize` / `can`, in the spirit of Outline's `server/policies`: each
 * resource file (users.ts, apiKeys.ts, …) describes, once, who may do what to that kind of object,
 * and routes ask instead of checking ownership by hand.
 *
 * A resource registers itself in two steps (see apiKeys.ts for a complete example):
 *
 *   declare module "./policy.ts" {
 *     interface PolicyRegistry {
 *       apiKey: { subject: { user_id: string }; objectActions: "read" | "update" | "delete"; classActions: "create" | "list" };
 *     }
 *   }
 *   definePolicy("apiKey", { label: "API key", object: { read: …, update: …, delete: … }, class: { create: …, list: … } });
 *
 * and index.ts imports the file. Then `authorize(actor, "apiKey.delete", row)` type-checks `row`.
 *
 * How a refusal answers (the same for every resource; a ServiceError, HTTP status in brackets):
 * - an anonymous actor gets `unauthenticated` (401);
 * - object actions (`read`, `update`, … on one row): a missing row, or a row the actor may not
 *   `read`, answers `not_found` (404) — the same answer whether or not it exists, so ids leak
 *   nothing; a row the actor may read but not change answers `forbidden` (403);
 * - class actions (`create`, `list`, … with no row): `forbidden` (403).
 */
// eslint-disable-next-line @typescript-eslint/no-empty-interface
export interface PolicyRegistry {}

export type SignedInActor = Exclude<Actor, AnonymousActor>;

type Resource = keyof PolicyRegistry & string;
type SubjectOfResource<R extends Resource> = PolicyRegistry[R] extends { subject: infer S } ? S : never;
type ObjectActionsOf<R extends Resource> = PolicyRegistry[R] extends { objectActions: infer A extends string } ? A : never;
type ClassActionsOf<R extends Resource> = PolicyRegistry[R] extends { classActions: infer A extends string } ? A : never;

/** Every "resource.action" that acts on one object, e.g. "apiKey.delete". */
export type ObjectAction = { [R in Resource]: `${R}.${ObjectActionsOf<R>}` }[Resource];
/** Every "resource.action" that acts on the resource as a whole, e.g. "apiKey.create". */
export type ClassAction = { [R in Resource]: `${R}.${ClassActionsOf<R>}` }[Resource];
export type SubjectOf<A extends string> = A extends `${infer R extends Resource}.${string}` ? SubjectOfResource<R> : never;

export type ObjectRule<S> = (actor: SignedInActor, subject: S) => boolean;
export type ClassRule = (actor: SignedInActor) => boolean;

export interface PolicyDefinition<R extends Resource> {
  /** How the resource is named in errors: "API key" gives "API key not found". */
  label: string;
  /** Error code of the 404; defaults to "not_found". */
  notFoundCode?: string;
  /** Names the request field in the 404 (OpenAI's `param`), e.g. "model". */
  notFoundParam?: string;
  /** Must contain `read`: what the actor may not read does not exist for them. */
  object: Record<ObjectActionsOf<R> | "read", ObjectRule<SubjectOfResource<R>>>;
  class?: Record<ClassActionsOf<R>, ClassRule>;
  /**
   * The refusal for an object the actor sees but may not act on, when a generic 403 would not
   * tell them why (a model their plan does not include).
   */
  denied?: Partial<Record<ObjectActionsOf<R>, (actor: SignedInActor, subject: SubjectOfResource<R>) => ServiceError>>;
}

interface StoredPolicy {
  label: string;
  notFoundCode: string;
  notFoundParam: string | null;
  object: Record<string, ObjectRule<unknown>>;
  class: Record<string, ClassRule>;
  denied: Record<string, (actor: SignedInActor, subject: unknown) => ServiceError>;
}

const policies = new Map<string, StoredPolicy>();

export function definePolicy<R extends Resource>(resource: R, definition: PolicyDefinition<R>): void {
  if (policies.has(resource)) throw new Error(`policy for ${resource} is defined twice`);
  policies.set(resource, {
    label: definition.label,
    notFoundCode: definition.notFoundCode ?? "not_found",
    notFoundParam: definition.notFoundParam ?? null,
    object: definition.object as Record<string, ObjectRule<unknown>>,
    class: (definition.class ?? {}) as Record<string, ClassRule>,
    denied: (definition.denied ?? {}) as Record<string, (actor: SignedInActor, subject: unknown) => ServiceError>,
  });
}

/** Whether `actor` may do `action` (to `subject`, for object actions). Never throws for a denial. */
export function can<A extends ObjectAction>(actor: Actor, action: A, subject: SubjectOf<A> | null | undefined): boolean;
export function can(actor: Actor, action: ClassAction): boolean;
export function can(actor: Actor, action: string, subject?: unknown): boolean {
  return decide(actor, action, subject, arguments.length >= 3) === null;
}

/**
 * Throws the ServiceError that `actor` deserves unless it may do `action`: unauthenticated for
 * anonymous, not_found for objects it may not see (or that don't exist), forbidden for what it
 * sees but may not do.
 */
export function authorize<A extends ObjectAction>(
  actor: Actor,
  action: A,
  subject: SubjectOf<A> | null | undefined,
): asserts subject is SubjectOf<A>;
export function authorize(actor: Actor, action: ClassAction): asserts actor is SignedInActor;
export function authorize(actor: Actor, action: string, subject?: unknown): void {
  const error = decide(actor, action, subject, arguments.length >= 3);
  if (error) throw error;
}

function decide(actor: Actor, action: string, subject: unknown, hasSubject: boolean): ServiceError | null {
  const error = decideAs(actor, action, subject, hasSubject);
  // An admin held back until they enrol a second factor (src/auth/secondFactorSetting.ts) is told
  // so wherever admin rights would have let them through, rather than a bare 403/404.
  if (error && actor.kind === "user" && actor.secondFactorRequired && decideAs({ ...actor, role: "admin", secondFactorRequired: false }, action, subject, hasSubject) === null) {
    return new ServiceError("forbidden", "Administrators must set up a second factor before using the admin area: open Settings → Security.", { code: "second_factor_required" });
  }
  return error;
}

function decideAs(actor: Actor, action: string, subject: unknown, hasSubject: boolean): ServiceError | null {
  const [resource, verb] = splitAction(action);
  const policy = policies.get(resource);
  if (!policy) throw new Error(`no policy is defined for ${resource} (import it from src/policies/index.ts)`);
  if (actor.kind === "anonymous") return unauthenticated();
  if (!hasSubject) {
    const rule = policy.class[verb];
    if (!rule) throw new Error(`${action} is not a class action of the ${resource} policy`);
    return rule(actor) ? null : forbidden(action);
  }
  const rule = policy.object[verb];
  const read = policy.object.read;
  if (!rule || !read) throw new Error(`${action} is not an object action of the ${resource} policy`);
  if (subject === null || subject === undefined || !read(actor, subject)) {
    return new ServiceError("not_found", `${policy.label} not found`, { code: policy.notFoundCode, param: policy.notFoundParam });
  }
  if (rule(actor, subject)) return null;
  return policy.denied[verb]?.(actor, subject) ?? forbidden(action);
}

function splitAction(action: string): [string, string] {
  const dot = action.indexOf(".");
  if (dot <= 0) throw new Error(`policy action must look like "resource.verb", got ${JSON.stringify(action)}`);
  return [action.slice(0, dot), action.slice(dot + 1)];
}

/**
 * The signed-in account behind `actor`, for routes that act on "my" things (list my keys…): 401 for
 * anonymous and for the local single-user actor, which has no account (unauthenticated).
 */
export function requireUser(actor: Actor): UserActor {
  if (actor.kind !== "user") throw unauthenticated();
  return actor;
}

export function unauthenticated(): ServiceError {
  return new ServiceError("unauthenticated", "Authentication required: sign in, or send an API key as 'Authorization: Bearer <key>'.", { code: "unauthenticated" });
}

function forbidden(action: string): ServiceError {
  return new ServiceError("forbidden", `You are not allowed to do this (${action}).`, { code: "forbidden" });
}
