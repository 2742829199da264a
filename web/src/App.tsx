import { useCallback, useEffect, useState } from "react";
import { authState, logout, type AuthState, type User } from "./api/auth.ts";
import { describeError, onSignedOut } from "./api/http.ts";
import { listModels, type ModelInfo } from "./api/models.ts";
import { ChatPage } from "./chat/ChatPage.tsx";
import { Sidebar } from "./chat/Sidebar.tsx";
import { AdminPage } from "./pages/admin/AdminPage.tsx";
import { ApiKeysPage } from "./pages/ApiKeysPage.tsx";
import { LoginPage } from "./pages/LoginPage.tsx";
import { PendingPage } from "./pages/PendingPage.tsx";
import { SettingsPage } from "./pages/SettingsPage.tsx";
import { SignupPage } from "./pages/SignupPage.tsx";
import { Link, navigate, usePath } from "./router.tsx";
import { useOnline } from "./state/online.ts";
import { useTheme } from "./state/theme.ts";

type Boot = { kind: "loading" } | { kind: "failed"; message: string } | { kind: "ready"; state: AuthState };

/** Who is here decides what shows: the sign-in pages, the pending screen, or the app. */
export function App() {
  const [boot, setBoot] = useState<Boot>({ kind: "loading" });
  const [pending, setPending] = useState<User | null>(null);
  const path = usePath();

  const load = useCallback(async () => {
    try {
      setBoot({ kind: "ready", state: await authState() });
    } catch (error) {
      setBoot({ kind: "failed", message: describeError(error) });
    }
  }, []);
  useEffect(() => void load(), [load]);
  // Session ended elsewhere (expired, revoked, account disabled): back to the sign-in page.
  useEffect(() => onSignedOut(() => void load()), [load]);

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
  if (pending) return <PendingPage user={pending} onBack={() => setPending(null)} />;
  if (!state.user) {
    const signedIn = (user: User) => {
      setBoot({ kind: "ready", state: { ...state, user } });
      navigate("/", { replace: true });
    };
    return path === "/signup" ? (
      <SignupPage state={state} onSignedUp={signedIn} onPending={setPending} />
    ) : (
      <LoginPage state={state} onSignedIn={signedIn} />
    );
  }
  return <Shell user={state.user} onSignedOut={() => void load()} />;
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
  useEffect(loadModels, [loadModels]);
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
            <Link href="/keys" onClick={closeDrawer}>
              API keys
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
      <main className="main">
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
        {page}
      </main>
    </div>
  );
}
