import { ServiceError } from "../errors.ts";
import { BUNDLED_SUITE_PATH, loadSuite, suiteDigest, suiteSummary, type Suite } from "./suite.ts";

/**
 * The suites an admin can run from the admin area: the bundled one and the operator's files
 * (config `auditSuites`). Read from disk when asked (admins ask rarely, and an operator's edit then
 * shows without a restart); a file that does not load is listed with its error.
 */
export class SuiteCatalog {
  private readonly files: string[];

  constructor(extraFiles: readonly string[] = []) {
    this.files = [BUNDLED_SUITE_PATH, ...extraFiles.filter((f) => f !== BUNDLED_SUITE_PATH)];
  }

  list(): SuiteEntry[] {
    return this.files.map((file) => {
      try {
        const suite = loadSuite(file);
        const summary = suiteSummary(suite);
        return {
          file,
          id: suite.id,
          version: suite.version,
          title: suite.title,
          bundled: file === BUNDLED_SUITE_PATH,
          questions: summary.questions,
          controls: summary.controls,
          countries: Object.keys(summary.byCountry).filter((c) => c !== "--").sort(),
          languages: Object.keys(summary.byLanguage).sort(),
          kinds: Object.keys(summary.byKind).sort(),
          topics: Object.keys(summary.byTopic),
          error: null,
        };
      } catch (error) {
        return { file, id: null, version: null, title: null, bundled: file === BUNDLED_SUITE_PATH, questions: 0, controls: 0, countries: [], languages: [], kinds: [], topics: [], error: (error as Error).message };
      }
    });
  }

  /** The suite with this id (the first file that has it), with its digest. */
  get(id: string): { suite: Suite; digest: string } {
    for (const file of this.files) {
      let suite: Suite;
      try {
        suite = loadSuite(file);
      } catch {
        continue;
      }
      if (suite.id === id) return { suite, digest: suiteDigest(suite) };
    }
    throw new ServiceError("not_found", `No audit suite "${id}" is offered here.`, { code: "audit_suite_not_found", param: "suite" });
  }
}

export interface SuiteEntry {
  file: string;
  id: string | null;
  version: string | null;
  title: string | null;
  bundled: boolean;
  questions: number;
  controls: number;
  countries: string[];
  languages: string[];
  kinds: string[];
  topics: string[];
  error: string | null;
}
