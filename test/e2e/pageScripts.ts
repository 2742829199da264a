/**
 * Scripts run inside the page (page.evaluate), kept as source text: the project's type-check has no
 * DOM library. Each watches the DOM with a MutationObserver, because the scripted models stream
 * faster than any polling from the test process could see.
 */

/** Records each state the reasoning panel passes through into `window.panelStates`. */
export const RECORD_PANEL_STATES = `(() => {
  const states = [];
  window.panelStates = states;
  new MutationObserver(() => {
    const panel = document.querySelector('[data-testid="reasoning"]');
    if (!panel) return;
    const entry = {
      state: panel.getAttribute("data-state") || "",
      label: panel.querySelector('[data-testid="reasoning-toggle"]')?.textContent || "",
      text: panel.querySelector('[data-testid="reasoning-text"]')?.textContent || "",
    };
    const last = states[states.length - 1];
    if (!last || last.state !== entry.state || last.text !== entry.text) states.push(entry);
  }).observe(document.body, { subtree: true, childList: true, characterData: true, attributes: true });
})()`;

export const PANEL_STATES = "window.panelStates";

/**
 * Stops the answer being written as soon as its first reasoning text shows: with the Stop button, or with the Esc
 * key pressed in the message box (where the focus is after sending).
 */
export function stopOnFirstReasoning(how: "button" | "escape"): string {
  return `(() => {
  const observer = new MutationObserver(() => {
    const streaming = '[data-testid="assistant-message"][data-status="streaming"] [data-testid="reasoning-text"]';
    const text = document.querySelector(streaming)?.textContent || "";
    const stop = document.querySelector('[data-testid="stop"]');
    if (text.length > 0 && stop) {
      observer.disconnect();
      if (${JSON.stringify(how)} === "button") stop.click();
      else document.querySelector('textarea[aria-label="Message"]').dispatchEvent(new KeyboardEvent("keydown", { key: "Escape", bubbles: true }));
    }
  });
  observer.observe(document.body, { subtree: true, childList: true, characterData: true });
})()`;
}
