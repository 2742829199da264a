import { lazy, Suspense } from "react";
import { PageLayout } from "../../components/PageLayout.tsx";
import { Link } from "../../router.tsx";
import { UsageAdminPage } from "../UsageAdminPage.tsx";
import { AccessCodesTab } from "./AccessCodesTab.tsx";
import { AuditTab } from "./AuditTab.tsx";
import { AdminSecondFactorNotice } from "./SecondFactorRequirement.tsx";
import { BillingTab } from "./BillingTab.tsx";
import { SignupTab } from "./SignupTab.tsx";
import { UsersTab } from "./UsersTab.tsx";

// Its own chunk: the charts load only when the tab is opened.
const DashboardTab = lazy(async () => ({ default: (await import("./DashboardTab.tsx")).DashboardTab }));
// Its own chunk too: pulls, loads and unloads are an operator's occasional work.
const ModelsTab = lazy(async () => ({ default: (await import("./ModelsTab.tsx")).ModelsTab }));
// Model audits (not the audit log): their own chunk, loaded when the tab is opened.
const ModelAuditsTab = lazy(async () => ({ default: (await import("./AuditsTab.tsx")).ModelAuditsTab }));
// Moderation policies and interventions: their own chunk as well.
const ModerationTab = lazy(async () => ({ default: (await import("./ModerationTab.tsx")).ModerationTab }));

const TABS = [
  { path: "/admin/users", label: "Users" },
  { path: "/admin/signup", label: "Sign-up & attack mode" },
  { path: "/admin/codes", label: "Access codes" },
  { path: "/admin/usage", label: "Usage" },
  { path: "/admin/billing", label: "Billing" },
  { path: "/admin/audit", label: "Audit log" },
  { path: "/admin/dashboard", label: "Dashboard" },
  { path: "/admin/models", label: "Models" },
  { path: "/admin/model-audits", label: "Model audits" },
  { path: "/admin/moderation", label: "Moderation" },
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
      <AdminSecondFactorNotice />
      {tab.path === "/admin/users" ? <UsersTab currentUserId={currentUserId} /> : null}
      {tab.path === "/admin/signup" ? <SignupTab /> : null}
      {tab.path === "/admin/codes" ? <AccessCodesTab /> : null}
      {tab.path === "/admin/usage" ? <UsageAdminPage /> : null}
      {tab.path === "/admin/billing" ? <BillingTab /> : null}
      {tab.path === "/admin/audit" ? <AuditTab /> : null}
      {tab.path === "/admin/dashboard" ? (
        <Suspense fallback={<p>Loading…</p>}>
          <DashboardTab />
        </Suspense>
      ) : null}
      {tab.path === "/admin/models" ? (
        <Suspense fallback={<p>Loading…</p>}>
          <ModelsTab />
        </Suspense>
      ) : null}
      {tab.path === "/admin/model-audits" ? (
        <Suspense fallback={<p>Loading…</p>}>
          <ModelAuditsTab />
        </Suspense>
      ) : null}
      {tab.path === "/admin/moderation" ? (
        <Suspense fallback={<p>Loading…</p>}>
          <ModerationTab />
        </Suspense>
      ) : null}
    </PageLayout>
  );
}
