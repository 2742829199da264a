import { useCallback, useEffect, useState } from "react";
import type { Page } from "../../api/admin.ts";
import { describeError } from "../../api/http.ts";

/** A cursor-paged admin list: first page on load (and when `deps` change), "Load more" after. */
export function usePaged<T>(fetchPage: (cursor?: string) => Promise<Page<T>>, deps: unknown[]) {
  const [items, setItems] = useState<T[] | null>(null);
  const [next, setNext] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);

  const fetcher = useCallback(fetchPage, deps);
  const reload = useCallback(() => {
    fetcher()
      .then((page) => {
        setItems(page.data);
        setNext(page.next_cursor);
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
        setNext(page.next_cursor);
      })
      .catch((e) => setError(describeError(e)));
  };
  return { items, hasMore: next !== null, more, reload, error, setError };
}
