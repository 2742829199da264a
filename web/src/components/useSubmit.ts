import { useState, type FormEvent } from "react";
import { describeError } from "../api/http.ts";

/**
 * A form that sends one request and, on success, hands the user on elsewhere (signed in, waiting for
 * approval). `busy` disables the submit button while the request is out so it is not sent twice,
 * and stays on after success: the form is on its way out, and re-enabling it would only let the
 * same request be sent again. A failure re-enables the form and shows the server's words in `error`.
 */
export function useSubmit(work: () => Promise<void>) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const onSubmit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await work();
    } catch (e) {
      setError(describeError(e));
      setBusy(false);
    }
  };

  return { busy, error, onSubmit };
}
