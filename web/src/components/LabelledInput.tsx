import type { InputHTMLAttributes, ReactNode } from "react";

type LabelledInputProps = Omit<InputHTMLAttributes<HTMLInputElement>, "value" | "onChange"> & {
  label: ReactNode;
  value: string;
  /** The new text, rather than the change event: every caller only wants that. */
  onValue: (value: string) => void;
};

/**
 * A text-like input inside its <label>, so the label is its accessible name without an id to keep
 * unique; any other input attribute (type, required, autoComplete, aria-label…) passes through.
 */
export function LabelledInput({ label, value, onValue, ...input }: LabelledInputProps) {
  return (
    <label>
      {label}
      <input {...input} value={value} onChange={(e) => onValue(e.target.value)} />
    </label>
  );
}
