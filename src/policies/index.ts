/**
 * The one place that answers "may actor X do Y to Z". Routes call:
 *
 *   authorize(request.actor, "apiKey.delete", row);   // object action: 404 unless X may read it, 403 if read-only
 *   authorize(request.actor, "accessCode.create");    // class action: 403 when not allowed
 *   if (can(request.actor, "user.disable", user)) …   // the same decision as a boolean
 *
 * and never compare owner ids themselves. Anonymous actors always get 401.
 * A new resource is one file here (copy apiKeys.ts) plus one import below.
 */
import "./accessCodes.ts";
import "./apiKeys.ts";
import "./audits.ts";
import "./billing.ts";
import "./conversations.ts";
import "./conversationShares.ts";
import "./dashboard.ts";
import "./files.ts";
import "./models.ts";
import "./moderation.ts";
import "./searches.ts";
import "./security.ts";
import "./sessions.ts";
import "./settings.ts";
import "./users.ts";

export { authorize, can, requireUser, unauthenticated, type ClassAction, type ObjectAction, type SignedInActor, type SubjectOf } from "./policy.ts";
