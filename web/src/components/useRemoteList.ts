import { useCallback, useEffect, useState } from "react";
import { describeError } from "../api/http.ts";

/** What a list endpoint answers: items, and a cursor for the next page (null or absent: the list is complete). */
export interface ListPage<T> {
  data: T[];
  next_cursor?: string | null;
}

export interface RemoteList<T> {
  /** null until the first page answers. */
  items: T[] | null;
  hasMore: boolean;
  /** Appends the next page. */
  more: () => void;
  reload: () => void;
  /** Runs an action on the list, then re-reads it; a failure goes to `error`. */
  change: (run: () => Promise<unknown>) => Promise<void>;
  error: string | null;
  setError: (error: string | null) => void;
}

/**
 * A list the server owns, as a page shows it: the first page on load (and again when `deps`
 * change), "Load more" after, and `change` for an action on it (create, revoke, approve…), which
 * re-reads the list on success, because the server decides what the list looks like afterwards
 * (statuses, ordering), and reports a failure on the same error line as loading does.
 */
export function useRemoteList<T>(fetchPage: (cursor?: string) => Promise<ListPage<T>>, deps: unknown[]): RemoteList<T> {
  const [items, setItems] = useState<T[] | null>(null);
  const [next, setNext] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);

  const fetcher = useCallback(fetchPage, deps);
  const reload = useCallback(() => {
    fetcher()
      .then((page) => {
        setItems(page.data);
        setNext(page.next_cursor ?? null);
        setError(null);
      })
      .catch((e) => setError(describeError(e)));
  }, [fetcher]);
  useEffect(reload, [reload]);

  const more = () => {
    if (!next) return;
    fetcher(next)
      .then((page) => {
        setItems((list) => [...(list ?? []), ...page.data]);
        setNext(page.next_cursor ?? null);
      })
      .catch((e) => setError(describeError(e)));
  };

  const change = async (run: () => Promise<unknown>) => {
    try {
      await run();
      reload();
    } catch (e) {
      setError(describeError(e));
    }
  };

  return { items, hasMore: next !== null, more, reload, change, error, setError };
}
