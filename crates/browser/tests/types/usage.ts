// Compiled with `tsc --noEmit` against www/pkg: the published declarations
// describe the API as the README shows it.
import {
  describeError,
  normalise,
  outcomeOf,
  postSubmission,
  prepare,
  protectForm,
  pseudonymInput,
  pseudonymise,
  pseudonymiseBatch,
  PseudoformError,
  ready,
  validate,
  type BatchResult,
  type Identity,
  type Submission,
} from "../../../../www/pkg/index.js";

export async function example(form: HTMLFormElement): Promise<void> {
  await ready();
  const name: string = normalise("birthName", "van der Berg-Jansen");
  const identity: Identity = { birthName: name, birthDate: "1-2-1980", sex: "V", initial: "J" };
  const input: string = pseudonymInput("NGGV", identity);
  const problems = validate(identity, { require: "NGGV RGG", provider: "ura:00000001" });
  for (const p of problems) console.log(p.field, p.code, p.type, input);
  const { prepared, skipped } = prepare(identity, {
    recipientOrganization: "oin:00000001000000001000",
    recipientScope: "demo",
    types: ["NGGV", "RGG"],
  });
  console.log(prepared[0]?.blindedInput.length, skipped.length);
  const options = {
    ttp: "https://ttp.example",
    recipientOrganization: "oin:00000001000000001000",
    recipientScope: "demo",
    types: "NGGV RGG MRN",
    provider: "ura:00000001",
  };
  try {
    const { types, skipped, submission } = await pseudonymise(identity, {
      ...options,
      require: ["NGGV"],
      timeoutMs: 5000,
    });
    console.log(types.join(" "), skipped.length);
    const body: Submission = { ...submission, data: { diagnose: "Heupartrose", complicaties: ["wondinfectie"] } };
    if ("record" in body) console.log(body.record.length, body.encryptedBlindFactors.length);
    try {
      const receipt = await postSubmission("/api/submissions", body, { timeoutMs: 5000 });
      console.log(receipt?.recordId);
    } catch (e) {
      const outcome: "stored" | "expired" | "refused" | "unknown" = outcomeOf(e);
      console.log(outcome);
    }
  } catch (e) {
    if (e instanceof PseudoformError) console.log(e.code, e.field, e.problems?.length, describeError(e, "en"));
  }
  const results: BatchResult[] = await pseudonymiseBatch([identity], options, {
    onProgress: ({ done, total }) => console.log(done / total),
  });
  for (const r of results) console.log(r.ok ? r.types : r.errors.length);
  const controller = protectForm(form, { lang: "nl", require: "NGGV RGG", enterSubmits: false });
  await controller.ready;
  controller.destroy();
}
