import type { FastifyInstance } from "fastify";
import type { ModelRouter } from "../../engines/router.ts";
import { ApiError } from "../errors.ts";
import { presentModel } from "./presenters.ts";

/** GET /v1/models and /v1/models/:id. */
export function registerModels(app: FastifyInstance, deps: { router: ModelRouter; startedAt: number }): void {
  const created = Math.floor(deps.startedAt / 1000);
  app.get("/v1/models", async () => ({
    object: "list",
    data: deps.router.models().map((m) => presentModel(m, created)),
  }));
  app.get<{ Params: { id: string } }>("/v1/models/:id", async (request) => {
    const model = deps.router.model(request.params.id);
    if (!model) throw new ApiError(404, `The model '${request.params.id}' does not exist`, "model_not_found", "model");
    return presentModel(model, created);
  });
}
