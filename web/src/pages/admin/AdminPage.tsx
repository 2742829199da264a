import { PageLayout } from "../../components/PageLayout.tsx";
import { Link } from "../../router.tsx";
import { UsageAdminPage } from "../UsageAdminPage.tsx";
import { AccessCodesTab } from "./AccessCodesTab.tsx";
import { AuditTab } from "./AuditTab.tsx";
import { BillingTab } from "./BillingTab.tsx";
import { SignupTab } from "./SignupTab.tsx";
import { UsersTab } from "./UsersTab.tsx";

const TABS = [
  { path: "/admin/users", label: "Users" },
  { path: "/admin/signup", label: "Sign-up & attack mode" },
  { path: "/admin/codes", label: "Access codes" },
  { path: "/admin/usage", label: "Usage" },
  { path: "/admin/billing", label: "Billing" },
  { path: "/admin/audit", label: "Audit log" },
] as const;

/** The operator's pages; the server refuses every call here to non-admins anyway. */
export function AdminPage({ path, currentUserId }: { path: string; currentUserId: string }) {
  const tab = TABS.find((t) => path === t.path) ?? TABS[0];
  return (
    <PageLayout title="Administration">
      <nav className="tabs" aria-label="Administration">
        {TABS.map((t) => (
          <Link key={t.path} href={t.path} aria-current={t === tab ? "page" : undefined}>
            {t.label}
          </Link>
        ))}
      </nav>
      {tab.path === "/admin/users" ? <UsersTab currentUserId={currentUserId} /> : null}
      {tab.path === "/admin/signup" ? <SignupTab /> : null}
      {tab.path === "/admin/codes" ? <AccessCodesTab /> : null}
      {tab.path === "/admin/usage" ? <UsageAdminPage /> : null}
      {tab.path === "/admin/billing" ? <BillingTab /> : null}
      {tab.path === "/admin/audit" ? <AuditTab /> : null}
    </PageLayout>
  );
}
