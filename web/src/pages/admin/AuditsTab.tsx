import { useEffect, useState, type FormEvent } from "react";
import {
  auditReportUrl,
  cancelAudit,
  listAuditRuns,
  listAuditSuites,
  publishAudit,
  resumeAudit,
  startAudit,
  unpublishAudit,
  type AuditRun,
  type AuditSuiteEntry,
} from "../../api/audits.ts";
import { describeError } from "../../api/http.ts";
import { listModels, type ModelInfo } from "../../api/models.ts";
import { ErrorText } from "../../components/ErrorText.tsx";
import { LabelledInput } from "../../components/LabelledInput.tsx";
import { formatTime } from "../../components/time.ts";

/**
 * Admin → Audits (not the audit LOG, which is AuditTab): run a suite of politically sensitive
 * questions against served models through the serving pipeline, watch the progress, open the
 * self-contained HTML report (a tab of its own: the report forbids being framed and runs no
 * script), and choose which models' summaries users see next to the model picker.
 */

const STATUS_BADGE: Record<AuditRun["status"], string> = {
  running: "",
  completed: "badge-ok",
  cancelled: "badge-warn",
  incomplete: "badge-warn",
  interrupted: "badge-warn",
  failed: "badge-bad",
};

/** A wrapping line of checkboxes. */
const CHOICES = { display: "flex", flexWrap: "wrap", gap: "6px 18px" } as const;

/** How often the list is read again while a run is going. */
const POLL_MS = 1000;

export function ModelAuditsTab() {
  const [runs, setRuns] = useState<AuditRun[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [tick, setTick] = useState(0);
  const reload = () => setTick((n) => n + 1);

  useEffect(() => {
    let stopped = false;
    listAuditRuns().then(
      (r) => {
        if (stopped) return;
        setRuns(r.data);
        setError(null);
      },
      (e) => !stopped && setError(describeError(e)),
    );
    return () => {
      stopped = true;
    };
  }, [tick]);

  // Poll only while something runs (or right after a start, before the list shows it).
  const running = runs?.some((r) => r.status === "running") ?? false;
  useEffect(() => {
    if (!running) return;
    const timer = setTimeout(reload, POLL_MS);
    return () => clearTimeout(timer);
  }, [running, runs]);

  const act = async (work: () => Promise<unknown>) => {
    try {
      await work();
      setError(null);
    } catch (e) {
      setError(describeError(e));
    }
    reload();
  };

  return (
    <>
      <StartForm onStarted={reload} />
      <section className="card" aria-label="Audit runs">
        <h2>Audit runs</h2>
        <ErrorText error={error} />
        {runs === null && !error ? <div className="muted">Loading…</div> : null}
        {runs?.length === 0 ? <div className="muted">No audit has run yet.</div> : null}
        {runs && runs.length > 0 ? (
          <ul className="pull-list" data-testid="audit-runs">
            {runs.map((run) => (
              <RunItem key={run.id} run={run} act={act} />
            ))}
          </ul>
        ) : null}
      </section>
    </>
  );
}

function RunItem({ run, act }: { run: AuditRun; act: (work: () => Promise<unknown>) => Promise<void> }) {
  const resumable = run.status === "cancelled" || run.status === "incomplete" || run.status === "interrupted";
  return (
    <li className="pull" data-testid="audit-run" data-run-id={run.id} data-status={run.status}>
      <div className="pull-head">
        <strong>
          {run.suite.title} ({run.suite.id} {run.suite.version})
        </strong>
        <span className={`badge ${STATUS_BADGE[run.status]}`} data-testid="audit-status">
          {run.status}
        </span>
        <span className="muted small">
          {formatTime(run.created_at)} · {run.classifiers.join(", ")} · {run.settings.samples} sample(s)
          {run.settings.temperature !== null ? ` at temperature ${run.settings.temperature}` : ""}
        </span>
      </div>
      <div className="pull-progress">
        <progress value={run.done ?? 0} max={Math.max(1, run.total)} aria-label={`Progress of run ${run.id}`} />
        <span className="small" data-testid="audit-progress">
          {run.done ?? 0} / {run.total} answers{run.failed ? `, ${run.failed} failed` : ""}
        </span>
      </div>
      {run.error ? <div className="small muted">{run.error}</div> : null}
      <div className="row-actions">
        {run.status === "running" ? (
          <button type="button" onClick={() => void act(() => cancelAudit(run.id))}>
            Cancel
          </button>
        ) : null}
        {resumable ? (
          <button type="button" onClick={() => void act(() => resumeAudit(run.id))}>
            Resume
          </button>
        ) : null}{" "}
        <a href={auditReportUrl(run.id, "html")} target="_blank" rel="noopener noreferrer" data-testid="audit-report">
          Report
        </a>{" "}
        · <a href={auditReportUrl(run.id, "json")}>JSON</a> · <a href={auditReportUrl(run.id, "csv")}>CSV</a>
      </div>
      {run.status === "completed" ? (
        <div style={CHOICES} aria-label="Shown to users">
          {run.models.map((model) => {
            const shown = run.published.includes(model);
            return (
              <label key={model} className="checkbox small">
                <input
                  type="checkbox"
                  checked={shown}
                  onChange={() => void act(() => (shown ? unpublishAudit(run.id, model) : publishAudit(run.id, model)))}
                  aria-label={`Show ${model}'s summary to users`}
                />{" "}
                show {model}'s summary to users
              </label>
            );
          })}
        </div>
      ) : null}
    </li>
  );
}

function StartForm({ onStarted }: { onStarted: () => void }) {
  const [suites, setSuites] = useState<AuditSuiteEntry[] | null>(null);
  const [models, setModels] = useState<ModelInfo[] | null>(null);
  const [suite, setSuite] = useState("");
  const [chosen, setChosen] = useState<string[]>([]);
  const [countries, setCountries] = useState<string[]>([]);
  const [languages, setLanguages] = useState<string[]>([]);
  const [samples, setSamples] = useState("1");
  const [temperature, setTemperature] = useState("");
  const [judge, setJudge] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    listAuditSuites().then(
      (r) => {
        setSuites(r.data);
        const first = r.data.find((s) => s.id !== null);
        if (first?.id) setSuite(first.id);
      },
      (e) => setError(describeError(e)),
    );
    listModels().then(
      (r) => setModels(r.data),
      (e) => setError(describeError(e)),
    );
  }, []);

  const picked = suites?.find((s) => s.id === suite) ?? null;
  const toggle = (list: string[], set: (v: string[]) => void, value: string) => set(list.includes(value) ? list.filter((v) => v !== value) : [...list, value]);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const n = Number(samples) || 1;
      await startAudit({
        models: chosen,
        suite,
        filter: { ...(countries.length ? { country: countries } : {}), ...(languages.length ? { language: languages } : {}) },
        samples: n,
        temperature: temperature.trim() === "" ? null : Number(temperature),
        judge: judge || null,
      });
      onStarted();
    } catch (e) {
      setError(describeError(e));
    }
    setBusy(false);
  };

  return (
    <section className="card" aria-label="Start an audit">
      <h2>Start an audit</h2>
      <p className="muted small">
        Asks every question of the suite (or the countries and languages picked) to each model, through the same queue, limits and metering as any client, as
        the <code>audit</code> account (its plan's quotas are the audit budget). The control questions are always asked: they are the baseline.
      </p>
      <ErrorText error={error} />
      <form className="form" onSubmit={(e) => void submit(e)}>
        <label>
          Suite
          <select value={suite} onChange={(e) => setSuite(e.target.value)} aria-label="Suite" disabled={!suites}>
            {(suites ?? []).map((s) =>
              s.id ? (
                <option key={s.id} value={s.id}>
                  {s.title} ({s.id} {s.version}, {s.questions} questions)
                </option>
              ) : null,
            )}
          </select>
        </label>
        {(suites ?? [])
          .filter((s) => s.error)
          .map((s, i) => (
            <div key={i} className="small muted">
              A suite file could not be read: {s.error}
            </div>
          ))}
        <fieldset>
          <legend>Models</legend>
          <div style={CHOICES}>
            {(models ?? []).map((m) => (
              <label key={m.id} className="checkbox small">
                <input type="checkbox" checked={chosen.includes(m.id)} onChange={() => toggle(chosen, setChosen, m.id)} aria-label={`Audit ${m.id}`} /> {m.id}
              </label>
            ))}
          </div>
        </fieldset>
        {picked ? (
          <fieldset>
            <legend>Only these countries and languages (none picked: all)</legend>
            <div style={CHOICES}>
              {picked.countries.map((c) => (
                <label key={c} className="checkbox small">
                  <input type="checkbox" checked={countries.includes(c)} onChange={() => toggle(countries, setCountries, c)} aria-label={`Country ${c}`} /> {c}
                </label>
              ))}
            </div>
            <div style={CHOICES}>
              {picked.languages.map((l) => (
                <label key={l} className="checkbox small">
                  <input type="checkbox" checked={languages.includes(l)} onChange={() => toggle(languages, setLanguages, l)} aria-label={`Language ${l}`} /> {l}
                </label>
              ))}
            </div>
          </fieldset>
        ) : null}
        <div className="row">
          <LabelledInput label="Samples per question" type="number" min={1} max={100} value={samples} onValue={setSamples} aria-label="Samples per question" />
          <LabelledInput
            label="Temperature (empty: 0 with one sample, 0.6 with several)"
            type="number"
            min={0}
            max={2}
            step="0.1"
            value={temperature}
            onValue={setTemperature}
            aria-label="Temperature"
          />
          <label>
            Judge model (optional)
            <select value={judge} onChange={(e) => setJudge(e.target.value)} aria-label="Judge model">
              <option value="">none: the rules only</option>
              {(models ?? []).map((m) => (
                <option key={m.id} value={m.id}>
                  {m.id}
                </option>
              ))}
            </select>
          </label>
        </div>
        <div>
          <button type="submit" className="btn-primary" disabled={busy || chosen.length === 0 || !suite}>
            Start the audit
          </button>
        </div>
      </form>
    </section>
  );
}
