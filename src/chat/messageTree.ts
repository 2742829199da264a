/**
 * Messages of a conversation form a tree: editing a user message or regenerating an answer adds a
 * sibling under the same parent, so earlier branches stay. The thread shown (and sent to the model)
 * is the path from the root to one leaf. Pure functions, shared by the server and the web app.
 */

export interface TreeNode {
  id: string;
  parent_id: string | null;
  /** Milliseconds (server rows) or ISO 8601 text (the app API): either sorts in time order. */
  created_at: number | string;
}

/** Siblings in creation order, ids breaking ties (ids are time-ordered). */
function byAge(a: TreeNode, b: TreeNode): number {
  if (a.created_at !== b.created_at) return a.created_at < b.created_at ? -1 : 1;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/** The thread from the root down to `leafId` (inclusive); empty when the id is unknown. */
export function pathTo<T extends TreeNode>(nodes: readonly T[], leafId: string | null): T[] {
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const path: T[] = [];
  const seen = new Set<string>();
  for (let node = leafId ? byId.get(leafId) : undefined; node; node = node.parent_id ? byId.get(node.parent_id) : undefined) {
    // A cycle can only come from a corrupted row; stop rather than loop forever.
    if (seen.has(node.id)) break;
    seen.add(node.id);
    path.push(node);
  }
  return path.reverse();
}

/** The node and its siblings (same parent), oldest first. */
export function siblingsOf<T extends TreeNode>(nodes: readonly T[], node: T): T[] {
  return nodes.filter((n) => n.parent_id === node.parent_id).sort(byAge);
}

/** The leaf reached from `fromId` by always taking the newest child: where a branch switch lands. */
export function newestLeafUnder<T extends TreeNode>(nodes: readonly T[], fromId: string): T | undefined {
  const children = new Map<string, T[]>();
  for (const n of nodes) {
    if (n.parent_id === null) continue;
    const list = children.get(n.parent_id) ?? [];
    list.push(n);
    children.set(n.parent_id, list);
  }
  let node = nodes.find((n) => n.id === fromId);
  const seen = new Set<string>();
  while (node && !seen.has(node.id)) {
    seen.add(node.id);
    const next = children.get(node.id)?.sort(byAge).at(-1);
    if (!next) return node;
    node = next;
  }
  return node;
}

/** The leaf to show when none was remembered: the newest leaf of the newest root. */
export function defaultLeaf<T extends TreeNode>(nodes: readonly T[]): T | undefined {
  const roots = nodes.filter((n) => n.parent_id === null).sort(byAge);
  const root = roots.at(-1);
  return root ? newestLeafUnder(nodes, root.id) : undefined;
}
