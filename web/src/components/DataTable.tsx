import type { ReactNode } from "react";
import { ErrorText } from "./ErrorText.tsx";
import type { RemoteList } from "./useRemoteList.ts";

interface DataTableProps<T> {
  list: Pick<RemoteList<T>, "items" | "error" | "hasMore" | "more">;
  /** Column headings; "" for a column without one (row actions). */
  columns: string[];
  /** One item as a `<tr>`, with its key. */
  row: (item: T) => ReactNode;
  /** Shown instead of the table when there are no items; without it an empty table is shown. */
  empty?: string;
  testId?: string;
}

/**
 * A server-held list as a table, with the states around it: its error line, "Loading…" until the
 * first answer (but not over an error), the empty message, and "Load more" while pages remain.
 * Rendered as siblings, not in a wrapper, so the card's own spacing applies to each.
 */
export function DataTable<T>({ list, columns, row, empty, testId }: DataTableProps<T>) {
  const { items, error, hasMore, more } = list;
  const showEmpty = items?.length === 0 && empty !== undefined;
  return (
    <>
      <ErrorText error={error} />
      {items === null && !error ? <div className="muted">Loading…</div> : null}
      {showEmpty ? <div className="muted">{empty}</div> : null}
      {items && !showEmpty ? (
        <div className="table-scroll">
          <table className="table" data-testid={testId}>
            <thead>
              <tr>
                {columns.map((heading, i) => (
                  <th key={i}>{heading || null}</th>
                ))}
              </tr>
            </thead>
            <tbody>{items.map((item) => row(item))}</tbody>
          </table>
        </div>
      ) : null}
      {hasMore ? (
        <button type="button" className="btn-secondary" onClick={more}>
          Load more
        </button>
      ) : null}
    </>
  );
}
