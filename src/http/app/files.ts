import type { FastifyInstance } from "fastify";
import { APP_FILE_PURPOSE, beginUpload, fileContent, fileFor, filesOf, removeFile, tooLarge, uploadFile, type FilesDeps } from "../../commands/files.ts";
import { ServiceError } from "../../errors.ts";
import { presentAppFile } from "../../presenters/file.ts";
import { fileIdParam, sendFileContent } from "../fileDownload.ts";
import { beforeBody, declaredLength, readUpload, registerMultipart } from "../fileUpload.ts";

/**
 * The web app's documents (`/api/files`, issue 15): the same commands as /v1/files, in the app's
 * shape (progress as `chunks_indexed` / `chunks_total` for the attach chip). `conversation_id` on
 * an upload is accepted for the app's convenience; a file is the user's, not the conversation's,
 * and a question names the files it reads (`file_ids`).
 */
export async function registerAppFiles(app: FastifyInstance, deps: FilesDeps): Promise<void> {
  await registerMultipart(app);

  app.post("/api/files", async (request, reply) => {
    const grant = await beforeBody(reply, () => beginUpload(deps, request.actor, declaredLength(request)));
    const { file } = await readUpload(request, reply, { maxFileBytes: grant.maxFileBytes, tooLarge: () => tooLarge(grant.maxFileBytes) });
    if (!file) throw new ServiceError("invalid_request", "Missing required parameter: 'file'.", { code: "missing_required_parameter", param: "file" });
    const stored = await uploadFile(deps, grant, { filename: file.filename, purpose: APP_FILE_PURPOSE, bytes: file.bytes });
    return reply.status(201).send(presentAppFile(stored));
  });

  app.get("/api/files", async (request) => ({ data: (await filesOf(deps, request.actor)).map(presentAppFile) }));

  app.get("/api/files/:id", async (request) => presentAppFile(await fileFor(deps, request.actor, fileIdParam(request))));

  app.get("/api/files/:id/content", async (request, reply) => {
    const { file, bytes } = await fileContent(deps, request.actor, fileIdParam(request));
    return sendFileContent(reply, file, bytes);
  });

  app.delete("/api/files/:id", async (request, reply) => {
    await removeFile(deps, request.actor, fileIdParam(request));
    return reply.status(204).send();
  });
}
