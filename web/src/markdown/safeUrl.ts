/**
 * URL rules for model output: links may point only at http, https and mailto (and the same page's
 * #anchors, which footnotes use); everything else — javascript:, data:, vbscript:, relative paths
 * into this app — is dropped.
 */
const ALLOWED_PROTOCOLS = new Set(["http:", "https:", "mailto:"]);

export function safeLinkUrl(url: string): string {
  const trimmed = url.trim();
  if (/^#[\w-]*$/.test(trimmed)) return trimmed;
  try {
    const parsed = new URL(trimmed);
    return ALLOWED_PROTOCOLS.has(parsed.protocol) ? parsed.href : "";
  } catch {
    return "";
  }
}

/**
 * Images are only ever fetched from https URLs, and only after a click (the Content-Security-Policy
 * allows no other image origins either).
 */
export function safeImageUrl(url: string): string {
  try {
    const parsed = new URL(url.trim());
    return parsed.protocol === "https:" ? parsed.href : "";
  } catch {
    return "";
  }
}

/** react-markdown's urlTransform: keeps what is safe for the attribute, empties the rest. */
export function urlTransform(url: string, key: string): string {
  return key === "src" ? safeImageUrl(url) : safeLinkUrl(url);
}
