import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { beginUpload, fileContent, fileFor, filesOf, removeFile, tooLarge, uploadFile, type FilesDeps } from "../../commands/files.ts";
import { ServiceError } from "../../errors.ts";
import { presentOpenAIFile, presentOpenAIFileDeleted, presentOpenAIFileList } from "../../presenters/file.ts";
import { fileIdParam, sendFileContent } from "../fileDownload.ts";
import { beforeBody, declaredLength, readUpload, registerMultipart } from "../fileUpload.ts";

const listQuery = z.object({ purpose: z.string().max(64).optional() }).loose();

/**
 * OpenAI's Files API on /v1 (issue 15), for documents the answers can search: upload (multipart:
 * `file` + `purpose`), list, retrieve, download (`/content`, an attachment), delete. A user's
 * files are theirs alone: anyone else's id answers 404 (src/policies/files.ts).
 */
export async function registerOpenAIFiles(app: FastifyInstance, deps: FilesDeps): Promise<void> {
  await registerMultipart(app);
  const access = { access: "user-or-local" as const };

  app.post("/v1/files", { config: access }, async (request, reply) => {
    const grant = await beforeBody(reply, () => beginUpload(deps, request.actor, declaredLength(request)));
    const { file, fields } = await readUpload(request, reply, { maxFileBytes: grant.maxFileBytes, tooLarge: () => tooLarge(grant.maxFileBytes) });
    if (!file) throw new ServiceError("invalid_request", "Missing required parameter: 'file'.", { code: "missing_required_parameter", param: "file" });
    if (fields.purpose === undefined) throw new ServiceError("invalid_request", "Missing required parameter: 'purpose'.", { code: "missing_required_parameter", param: "purpose" });
    const stored = await uploadFile(deps, grant, { filename: file.filename, purpose: fields.purpose, bytes: file.bytes });
    return reply.status(200).send(presentOpenAIFile(stored));
  });

  app.get("/v1/files", { config: access }, async (request) => {
    const query = listQuery.parse(request.query);
    return presentOpenAIFileList(await filesOf(deps, request.actor, query.purpose !== undefined ? { purpose: query.purpose } : {}));
  });

  app.get("/v1/files/:id", { config: access }, async (request) => presentOpenAIFile(await fileFor(deps, request.actor, fileIdParam(request))));

  app.get("/v1/files/:id/content", { config: access }, async (request, reply) => {
    const { file, bytes } = await fileContent(deps, request.actor, fileIdParam(request));
    return sendFileContent(reply, file, bytes);
  });

  app.delete("/v1/files/:id", { config: access }, async (request) => presentOpenAIFileDeleted(await removeFile(deps, request.actor, fileIdParam(request))));
}
