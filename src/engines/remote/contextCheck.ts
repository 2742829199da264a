import { EngineError, type GenerationRequest } from "../types.ts";

/**
 * The part of a context check a gateway can make without the upstream's tokenizer: a max_tokens
 * that leaves no room for even a one-token prompt in the model's configured `contextLength` is
 * refused before anything is sent (the upstream would refuse it too, after a round trip — or an
 * engine that clamps would answer less than was asked). Whether prompt + max_tokens fits is the
 * upstream's to say: the gateway only has an upper bound of the prompt's size.
 */
export function checkAgainstContext(request: Pick<GenerationRequest, "maxTokens">, contextLength: number | undefined): void {
  if (contextLength === undefined || request.maxTokens === undefined) return;
  if (request.maxTokens >= contextLength) {
    throw new EngineError(
      `max_tokens is ${request.maxTokens}, but this model's maximum context length is ${contextLength} tokens, prompt included.`,
      400,
      "context_length_exceeded",
      "max_tokens",
    );
  }
}
