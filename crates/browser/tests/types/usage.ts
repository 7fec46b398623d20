// Compiled with `tsc --noEmit` against www/pkg: the published declarations
// describe the API as the README shows it.
import {
  describeError,
  normalise,
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
} from "../../../../www/pkg/index.js";

export async function example(form: HTMLFormElement): Promise<void> {
  await ready();
  const name: string = normalise("birthName", "van der Berg-Jansen");
  const identity: Identity = { birthName: name, birthDate: "1-2-1980", sex: "V", initial: "J" };
  const input: string = pseudonymInput("NGGV", identity);
  const problems = validate(identity);
  for (const p of problems) console.log(p.field, p.code, input);
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
    const { pseudonyms } = await pseudonymise(identity, { ...options, timeoutMs: 5000 });
    console.log(pseudonyms.map((p) => p.type));
  } catch (e) {
    if (e instanceof PseudoformError) console.log(e.code, e.field, describeError(e, "en"));
  }
  const results: BatchResult[] = await pseudonymiseBatch([identity], options, {
    onProgress: ({ done, total }) => console.log(done / total),
  });
  for (const r of results) if (!r.ok) console.log(r.errors.length);
  const controller = protectForm(form, { lang: "nl" });
  await controller.ready;
  controller.destroy();
}
