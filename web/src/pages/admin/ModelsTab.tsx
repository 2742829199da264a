import { useCallback, useEffect, useState, type FormEvent } from "react";
import { describeError } from "../../api/http.ts";
import {
  cancelPull,
  deleteModelFile,
  getModelsOverview,
  getPull,
  isActivePull,
  loadModelFile,
  startPull,
  unloadModel,
  type ModelsOverview,
  type PullJob,
} from "../../api/localModels.ts";
import { ErrorText } from "../../components/ErrorText.tsx";
import { LabelledInput } from "../../components/LabelledInput.tsx";

/** How often a running pull is asked for its progress: often enough to look live, a few hundred bytes each. */
const POLL_MS = 500;

const STATE_LABEL: Record<PullJob["state"], string> = {
  downloading: "downloading",
  verifying: "checking that llama.cpp can load it",
  done: "done",
  failed: "failed",
  cancelled: "cancelled",
};

/**
 * Admin → Models: the local models, managed without a restart. Pull a file (as `sputnik pull`
 * would: hf:user/repo:QUANT or a URL), watch it arrive, load it (the memory check decides), unload
 * or delete it. A model loaded here is in everyone's model picker at once.
 */
export function ModelsTab() {
  const [overview, setOverview] = useState<ModelsOverview | null>(null);
  const [pulls, setPulls] = useState<PullJob[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [source, setSource] = useState("");
  const [name, setName] = useState("");
  const [busy, setBusy] = useState<string | null>(null);
  const [confirmDelete, setConfirmDelete] = useState<string | null>(null);

  const refresh = useCallback(async () => {
    try {
      const next = await getModelsOverview();
      setOverview(next);
      setPulls(next.pulls);
    } catch (e) {
      setError(describeError(e));
    }
  }, []);
  useEffect(() => void refresh(), [refresh]);

  // Running pulls are polled until they end; then the file list is read again (the new file is in it).
  const activeIds = pulls.filter(isActivePull).map((p) => p.id).join(",");
  useEffect(() => {
    if (!activeIds) return;
    const ids = activeIds.split(",");
    let stopped = false;
    const timer = window.setInterval(() => {
      void Promise.all(ids.map((id) => getPull(id).catch(() => null))).then((jobs) => {
        if (stopped) return;
        const fresh = new Map(jobs.filter((j): j is PullJob => j !== null).map((j) => [j.id, j]));
        setPulls((current) => current.map((p) => fresh.get(p.id) ?? p));
        if ([...fresh.values()].some((j) => !isActivePull(j))) void refresh();
      });
    }, POLL_MS);
    return () => {
      stopped = true;
      window.clearInterval(timer);
    };
  }, [activeIds, refresh]);

  /** One action at a time per thing (`key`), its refusal shown in the server's words, then a fresh list. */
  const act = async (key: string, work: () => Promise<unknown>) => {
    setBusy(key);
    setError(null);
    try {
      await work();
    } catch (e) {
      setError(describeError(e));
    } finally {
      setBusy(null);
      await refresh();
    }
  };

  const pull = (event: FormEvent) => {
    event.preventDefault();
    if (!source.trim()) return;
    void act("pull", async () => {
      const job = await startPull(source.trim(), name.trim() || null);
      setPulls((current) => [job, ...current.filter((p) => p.id !== job.id)]);
      setSource("");
      setName("");
    });
  };

  if (!overview) return error ? <ErrorText error={error} /> : <div className="muted">Loading…</div>;
  const { memory } = overview;
  return (
    <>
      <ErrorText error={error} />
      <section className="card" aria-labelledby="loaded-models">
        <h2 id="loaded-models">Loaded models</h2>
        <p className="small muted" data-testid="memory-line">
          {memory.budget_bytes !== null
            ? `Memory budget ${formatBytes(memory.budget_bytes)}; the loaded models take about ${formatBytes(memory.in_use_bytes)}.`
            : `The loaded models take about ${formatBytes(memory.in_use_bytes)}; a new one is checked against the memory the system has available.`}{" "}
          A model is unloaded only while it answers nothing.
        </p>
        {!overview.local_engine ? <p className="small">This service only fronts upstream models: it has no local engine to load models into.</p> : null}
        {overview.loaded.length === 0 ? (
          <div className="muted">No local model is loaded.</div>
        ) : (
          <div className="table-scroll">
            <table className="table" data-testid="loaded-models">
              <thead>
                <tr>
                  <th>Model</th>
                  <th>Context</th>
                  <th>Reasons</th>
                  <th>Memory</th>
                  <th>Answering</th>
                  <th />
                </tr>
              </thead>
              <tbody>
                {overview.loaded.map((m) => (
                  <tr key={m.id} data-model={m.id}>
                    <td>
                      {m.id}
                      {m.note ? <div className="small muted">{m.note}</div> : null}
                    </td>
                    <td>{m.context_length.toLocaleString("en-US")} tokens</td>
                    <td>{m.reasoning ? "yes" : "no"}</td>
                    <td>{m.memory_bytes !== null ? formatBytes(m.memory_bytes) : "—"}</td>
                    <td>{m.active_requests}</td>
                    <td>
                      <button type="button" className="btn-secondary btn-small" disabled={busy !== null} onClick={() => void act(`unload:${m.id}`, () => unloadModel(m.id))} aria-label={`Unload ${m.id}`}>
                        {busy === `unload:${m.id}` ? "Unloading…" : "Unload"}
                      </button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>

      <section className="card" aria-labelledby="pull-model">
        <h2 id="pull-model">Pull a model</h2>
        <form className="form" onSubmit={pull}>
          <div className="row">
            <LabelledInput label="Source" value={source} onValue={setSource} placeholder="hf:user/repo:Q4_K_M or https://…/model.gguf" maxLength={2000} spellCheck={false} autoComplete="off" />
            <LabelledInput label="Store as (optional)" value={name} onValue={setName} placeholder="the file's name" maxLength={205} spellCheck={false} autoComplete="off" />
            <button type="submit" className="btn-primary" disabled={busy !== null || source.trim() === ""}>
              Pull
            </button>
          </div>
        </form>
        <p className="small muted">An interrupted or cancelled pull keeps what it downloaded: pulling the same source again resumes it.</p>
        {pulls.length > 0 ? (
          <ul className="pull-list" aria-label="Pulls">
            {pulls.map((job) => (
              <PullRow key={job.id} job={job} disabled={busy !== null} onCancel={() => void act(`cancel:${job.id}`, () => cancelPull(job.id))} />
            ))}
          </ul>
        ) : null}
      </section>

      <section className="card" aria-labelledby="model-files">
        <h2 id="model-files">Model files</h2>
        {overview.files.length === 0 ? (
          <div className="muted">The models directory holds no model file yet: pull one above.</div>
        ) : (
          <div className="table-scroll">
            <table className="table" data-testid="model-files">
              <thead>
                <tr>
                  <th>File</th>
                  <th>Size</th>
                  <th>Kind</th>
                  <th>Status</th>
                  <th />
                </tr>
              </thead>
              <tbody>
                {overview.files.map((f) => (
                  <tr key={f.name} data-file={f.name}>
                    <td>
                      {f.name}
                      {f.error ? <div className="small error-text">{f.error}</div> : null}
                    </td>
                    <td>{formatBytes(f.size_bytes)}</td>
                    <td className="small">{[f.architecture, f.quantization, f.context_length ? `ctx ${f.context_length.toLocaleString("en-US")}` : null].filter(Boolean).join(" · ") || "—"}</td>
                    <td data-testid="file-status">{f.loaded ? (f.loaded_as === f.name ? "Loaded" : `Loaded as ${f.loaded_as}`) : "Not loaded"}</td>
                    <td className="row-actions">
                      {f.loaded ? null : (
                        <button type="button" className="btn-primary btn-small" disabled={busy !== null || !overview.local_engine} onClick={() => void act(`load:${f.name}`, () => loadModelFile(f.name))} aria-label={`Load ${f.name}`}>
                          {busy === `load:${f.name}` ? "Loading…" : "Load"}
                        </button>
                      )}
                      {f.loaded ? null : confirmDelete === f.name ? (
                        <>
                          <button
                            type="button"
                            className="btn-danger btn-small"
                            disabled={busy !== null}
                            onClick={() => {
                              setConfirmDelete(null);
                              void act(`delete:${f.name}`, () => deleteModelFile(f.name));
                            }}
                          >
                            Delete {f.name}
                          </button>
                          <button type="button" className="btn-ghost btn-small" onClick={() => setConfirmDelete(null)}>
                            Keep
                          </button>
                        </>
                      ) : (
                        <button type="button" className="btn-ghost btn-small" disabled={busy !== null} onClick={() => setConfirmDelete(f.name)} aria-label={`Delete ${f.name}…`}>
                          Delete…
                        </button>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
    </>
  );
}

function PullRow({ job, disabled, onCancel }: { job: PullJob; disabled: boolean; onCancel: () => void }) {
  const active = isActivePull(job);
  const facts = [
    job.total_bytes !== null ? `${formatBytes(job.downloaded_bytes)} of ${formatBytes(job.total_bytes)}` : formatBytes(job.downloaded_bytes),
    active && job.bytes_per_second ? `${formatBytes(job.bytes_per_second)}/s` : null,
    active && job.state === "downloading" && job.eta_seconds !== null ? `${formatDuration(job.eta_seconds)} left` : null,
    job.resumed_from_bytes > 0 ? `resumed at ${formatBytes(job.resumed_from_bytes)}` : null,
    job.already_present ? "the file was already there" : null,
  ].filter(Boolean);
  return (
    <li className="pull" data-testid="pull" data-state={job.state}>
      <div className="pull-head">
        <span className="pull-source">{job.source}</span>
        {job.name ? <span className="small muted">→ {job.name}</span> : null}
        <span className={`badge ${job.state === "failed" ? "badge-bad" : job.state === "done" ? "badge-ok" : ""}`} data-testid="pull-state">
          {STATE_LABEL[job.state]}
        </span>
      </div>
      <div className="pull-progress">
        {/* Without a known size the bar is indeterminate (no value) rather than wrong. */}
        <progress max={100} {...(job.percent !== null ? { value: job.percent } : {})} aria-label={`Progress of ${job.source}`} />
        <span data-testid="pull-percent">{job.percent !== null ? `${job.percent}%` : ""}</span>
        <span className="small muted">{facts.join(" · ")}</span>
        {active ? (
          <button type="button" className="btn-secondary btn-small" disabled={disabled} onClick={onCancel}>
            Cancel
          </button>
        ) : null}
      </div>
      {job.error ? (
        <div className="error-text small" role="alert">
          {job.error}
        </div>
      ) : null}
    </li>
  );
}

function formatBytes(bytes: number): string {
  if (bytes < 1000) return `${bytes} B`;
  const units = ["kB", "MB", "GB", "TB"];
  let value = bytes / 1000;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

function formatDuration(seconds: number): string {
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${seconds % 60} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}
