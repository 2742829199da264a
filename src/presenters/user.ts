import type { UserRow } from "../auth/users.ts";
import { isoTime } from "./time.ts";

/** An account as the app API shows it: never the password hash. */
export function presentUser(user: UserRow) {
  return {
    id: user.id,
    username: user.username,
    email: user.email,
    role: user.role,
    status: user.status,
    plan_id: user.plan_id,
    created_at: isoTime(user.created_at),
    last_login_at: isoTime(user.last_login_at),
  };
}

export type UserView = ReturnType<typeof presentUser>;
