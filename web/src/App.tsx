import { lazy, Suspense, useCallback, useEffect, useRef, useState, type ComponentType } from "react";
import { authState, logout, type AuthState, type User } from "./api/auth.ts";
import { describeError, onSignedOut } from "./api/http.ts";
import { listModels, type ModelInfo } from "./api/models.ts";
import { ChatPage } from "./chat/ChatPage.tsx";
import { Sidebar } from "./chat/Sidebar.tsx";
import { Link, navigate, usePath } from "./router.tsx";
import { useOnline } from "./state/online.ts";
import { useTheme } from "./state/theme.ts";

// Pages besides the chat and the sign-in form are chunks of their own, fetched when first opened:
// the first paint waits only for what it shows (the budget is checked by test/web-budget.test.ts).
const named = <K extends string, T extends ComponentType<any>>(load: () => Promise<Record<K, T>>, name: K) => lazy(async () => ({ default: (await load())[name] }));
// The sign-in form is fetched beside the first auth check (see `load`), so a signed-out visit never waits for it twice.
const loadLoginPage = () => import("./pages/LoginPage.tsx");
const LoginPage = named(loadLoginPage, "LoginPage");
const AdminPage = named(() => import("./pages/admin/AdminPage.tsx"), "AdminPage");
const ApiKeysPage = named(() => import("./pages/ApiKeysPage.tsx"), "ApiKeysPage");
const PendingPage = named(() => import("./pages/PendingPage.tsx"), "PendingPage");
const SettingsPage = named(() => import("./pages/SettingsPage.tsx"), "SettingsPage");
const SignupPage = named(() => import("./pages/SignupPage.tsx"), "SignupPage");
const UsagePage = named(() => import("./pages/UsagePage.tsx"), "UsagePage");
const SharedPage = named(() => import("./pages/SharedPage.tsx"), "SharedPage");
const DocumentsPage = named(() => import("./pages/DocumentsPage.tsx"), "DocumentsPage");

const pageLoading = <div className="center-page">Loading…</div>;

type Boot = { kind: "loading" } | { kind: "failed"; message: string } | { kind: "ready"; state: AuthState };

/** Who is here decides what shows: the sign-in pages, the pending screen, or the app. */
export function App() {
  const [boot, setBoot] = useState<Boot>({ kind: "loading" });
  const [pending, setPending] = useState<User | null>(null);
  /** The account was disabled while signed in: the page stays (typed text kept) under a note saying why. */
  const [disabled, setDisabled] = useState(false);
  const path = usePath();

  const load = useCallback(async () => {
    const login = loadLoginPage();
    login.catch(() => undefined);
    try {
      const state = await authState();
      if (!state.user) await login.catch(() => undefined);
      setBoot({ kind: "ready", state });
    } catch (error) {
      setBoot({ kind: "failed", message: describeError(error) });
    }
  }, []);
  // A shared link (/s/<token>) is for anyone: it asks nothing about who is here.
  const sharedToken = /^\/s\/([^/]+)$/.exec(path)?.[1];
  useEffect(() => void (sharedToken === undefined && load()), [load, sharedToken]);
  // Session ended elsewhere (expired, revoked, account disabled): back to the sign-in page.
  useEffect(() => onSignedOut((code) => (code === "account_disabled" ? setDisabled(true) : void load())), [load]);

  if (sharedToken !== undefined) {
    return (
      <Suspense fallback={pageLoading}>
        <SharedPage token={sharedToken} />
      </Suspense>
    );
  }
  if (boot.kind === "loading") return <div className="center-page">Loading…</div>;
  if (boot.kind === "failed") {
    return (
      <div className="center-page" role="alert">
        <div>
          <p>{boot.message}</p>
          <button type="button" className="btn-primary" onClick={() => void load()}>
            Try again
          </button>
        </div>
      </div>
    );
  }
  const { state } = boot;
  if (pending) {
    return (
      <Suspense fallback={pageLoading}>
        <PendingPage user={pending} onBack={() => setPending(null)} />
      </Suspense>
    );
  }
  // An admin's one-time reset link opens in the sign-in page's chunk, signed in or not.
  if (!state.user || path === "/reset-password") {
    const signedIn = (user: User) => {
      setBoot({ kind: "ready", state: { ...state, user } });
      navigate("/", { replace: true });
    };
    return path === "/signup" ? (
      <Suspense fallback={pageLoading}>
        <SignupPage state={state} onSignedUp={signedIn} onPending={setPending} />
      </Suspense>
    ) : (
      <Suspense fallback={pageLoading}>
        <LoginPage state={state} onSignedIn={signedIn} />
      </Suspense>
    );
  }
  // A disabled account cannot sign in again: the note stays until the page is left.
  return (
    <>
      {disabled ? (
        <div className="notice notice-error" role="alert" data-testid="account-disabled">
          Your account was disabled by an administrator.
        </div>
      ) : null}
      <Shell user={state.user} onSignedOut={() => void load()} />
    </>
  );
}

function Shell({ user, onSignedOut: signedOut }: { user: User; onSignedOut: () => void }) {
  const path = usePath();
  const online = useOnline();
  const [theme, setTheme] = useTheme();
  const [drawer, setDrawer] = useState(false);
  const [listVersion, setListVersion] = useState(0);
  const [models, setModels] = useState<ModelInfo[] | null>(null);
  const [modelsError, setModelsError] = useState<string | null>(null);
  const bumpList = useCallback(() => setListVersion((v) => v + 1), []);

  const loadModels = useCallback(() => {
    listModels()
      .then((r) => {
        setModels(r.data);
        setModelsError(null);
      })
      .catch((e) => setModelsError(describeError(e)));
  }, []);
  // Asked at start and again on each return to the chat: admins load and unload models while the
  // app is open (Admin → Models), and a model loaded there must be in the picker without a reload.
  const onChat = path === "/" || path.startsWith("/c/");
  const modelsAsked = useRef(false);
  useEffect(() => {
    if (modelsAsked.current && !onChat) return;
    modelsAsked.current = true;
    loadModels();
  }, [onChat, loadModels]);
  // Back online: refresh what may have changed meanwhile.
  useEffect(() => {
    if (online) {
      loadModels();
      bumpList();
    }
  }, [online, loadModels, bumpList]);

  const conversationMatch = /^\/c\/([^/]+)$/.exec(path);
  const conversationId = conversationMatch ? decodeURIComponent(conversationMatch[1]!) : null;
  const closeDrawer = () => setDrawer(false);

  const signOut = async () => {
    try {
      await logout();
    } finally {
      navigate("/", { replace: true });
      signedOut();
    }
  };

  let page;
  if (path === "/" || conversationId) {
    page = <ChatPage conversationId={conversationId} models={models} modelsError={modelsError} onListChanged={bumpList} />;
  } else if (path === "/settings") {
    page = <SettingsPage user={user} theme={theme} onTheme={setTheme} />;
  } else if (path === "/keys") {
    page = <ApiKeysPage models={models} />;
  } else if (path === "/usage") {
    page = <UsagePage />;
  } else if (path === "/documents") {
    page = <DocumentsPage />;
  } else if (path.startsWith("/admin") && user.role === "admin") {
    page = <AdminPage path={path} currentUserId={user.id} />;
  } else {
    page = (
      <div className="center-page">
        <div>
          <p>There is no page here.</p>
          <Link href="/">Back to the chat</Link>
        </div>
      </div>
    );
  }

  return (
    <div className={`app ${drawer ? "drawer-open" : ""}`}>
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <aside className="sidebar" aria-label="Sidebar">
        <div className="sidebar-head">
          <Link href="/" className="brand" onClick={closeDrawer}>
            Sputnik
          </Link>
        </div>
        <Sidebar activeId={conversationId} version={listVersion} onNavigate={closeDrawer} />
        <div className="sidebar-foot">
          <nav aria-label="Account">
            <Link href="/settings" onClick={closeDrawer}>
              Settings
            </Link>
            <Link href="/documents" onClick={closeDrawer}>
              Documents
            </Link>
            <Link href="/keys" onClick={closeDrawer}>
              API keys
            </Link>
            <Link href="/usage" onClick={closeDrawer}>
              Usage &amp; billing
            </Link>
            {user.role === "admin" ? (
              <Link href="/admin/users" onClick={closeDrawer}>
                Admin
              </Link>
            ) : null}
            <button type="button" className="nav-button" onClick={() => void signOut()}>
              Log out
            </button>
          </nav>
          <div className="user-line">
            <span data-testid="current-user">{user.username}</span>
            {user.role === "admin" ? <span className="badge">admin</span> : null}
            <span className="spacer" />
            <button
              type="button"
              className="btn-ghost btn-small"
              onClick={() => setTheme(document.documentElement.dataset.theme === "dark" ? "light" : "dark")}
              aria-label="Switch light/dark theme"
              title="Switch light/dark theme"
            >
              {theme === "dark" || (theme === "system" && document.documentElement.dataset.theme === "dark") ? "☀" : "☾"}
            </button>
          </div>
        </div>
      </aside>
      <div className="backdrop" onClick={closeDrawer} />
      <main className="main" id="main" tabIndex={-1}>
        <div className="topbar">
          <button type="button" className="btn-ghost" aria-label="Open the sidebar" onClick={() => setDrawer(true)}>
            ☰
          </button>
          <span className="topbar-title">Sputnik</span>
          <button type="button" className="btn-ghost" aria-label="New chat" onClick={() => navigate("/")}>
            +
          </button>
        </div>
        {!online ? (
          <div className="offline-banner" role="status">
            You are offline. Reconnecting when the network is back…
          </div>
        ) : null}
        <Suspense fallback={pageLoading}>{page}</Suspense>
      </main>
    </div>
  );
}
