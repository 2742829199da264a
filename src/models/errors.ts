/**
 * One error type for everything under models/: callers (CLI, HTTP admin routes) switch on `code`
 * to pick an exit status or HTTP status, and show `message` to people as is.
 */
export type ModelErrorCode =
  | "invalid_name"
  | "outside_models_dir"
  | "not_found"
  | "bad_source"
  | "blocked_address"
  | "insecure_protocol"
  | "too_many_redirects"
  | "http_error"
  | "network_error"
  | "download_failed"
  | "no_matching_file"
  | "ambiguous_file"
  | "split_model"
  | "storage_error"
  | "busy"
  | "invalid_model";

export class ModelError extends Error {
  readonly code: ModelErrorCode;

  constructor(code: ModelErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "ModelError";
    this.code = code;
  }
}
