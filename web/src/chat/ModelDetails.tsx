import type { ModelInfo } from "../api/models.ts";

/**
 * Under the composer: what the chosen model is — its context length, whether it reasons, and its
 * note when it has one (why the demo model is served and how to get a real one). Text only: a note
 * comes from the server's config and is never rendered as HTML.
 */
export function ModelDetails({ model }: { model: ModelInfo | null }) {
  if (!model) return null;
  const facts = [
    model.context_length ? `${model.context_length.toLocaleString("en-US")} tokens of context` : null,
    model.reasoning ? "reasons before it answers (DeepThink)" : "does not reason",
  ].filter(Boolean);
  return (
    <div className="model-details" data-testid="model-details">
      <span>{facts.join(" · ")}</span>
      {model.note ? (
        <div role="note" data-testid="model-note">
          {model.note}
        </div>
      ) : null}
    </div>
  );
}
