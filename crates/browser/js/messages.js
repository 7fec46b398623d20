// Messages for the clinician, in Dutch (default) and English. A message
// names the field and the rule, never the value that was typed.

const FIELDS = {
  nl: {
    birthName: "Geboortenaam", birthDate: "Geboortedatum", sex: "Geslacht", initial: "Voorletter",
    postcode: "Postcode", houseNumber: "Huisnummer", houseNumberAddition: "Toevoeging",
    bsn: "BSN", mrn: "Patiëntnummer", provider: "Zorgaanbieder",
  },
  en: {
    birthName: "Birth name", birthDate: "Birth date", sex: "Sex", initial: "Initial",
    postcode: "Postcode", houseNumber: "House number", houseNumberAddition: "Addition",
    bsn: "BSN", mrn: "Patient number", provider: "Care provider",
  },
};

const RULES = {
  nl: {
    required: "is niet ingevuld",
    tooLong: "is te lang",
    characters: "bevat tekens die hier niet zijn toegestaan",
    unsupportedLetter: "bevat een letter buiten het Latijnse alfabet; gebruik de schrijfwijze van het identiteitsbewijs",
    noLetters: "bevat geen letters",
    format: "heeft niet de verwachte vorm",
    calendar: "bestaat niet in de kalender",
    future: "ligt in de toekomst",
    tooEarly: "ligt vóór 1890",
    unknownValue: "is geen bekende waarde (gebruik man, vrouw of onbekend)",
    reservedLetters: "bestaat niet: de letters SA, SD en SS worden niet uitgegeven",
    range: "ligt buiten het toegestane bereik (1 tot en met 99999)",
    length: "heeft niet het juiste aantal cijfers",
    checksum: "voldoet niet aan de elfproef",
    zero: "bestaat alleen uit nullen",
    fullPostcodeRequired: "moet volledig zijn (vier cijfers en twee letters)",
  },
  en: {
    required: "is empty",
    tooLong: "is too long",
    characters: "contains characters that are not allowed here",
    unsupportedLetter: "contains a letter outside the Latin alphabet; use the spelling of the identity document",
    noLetters: "contains no letters",
    format: "does not have the expected format",
    calendar: "does not exist in the calendar",
    future: "lies in the future",
    tooEarly: "lies before 1890",
    unknownValue: "is not a known value (use male, female or unknown)",
    reservedLetters: "does not exist: the letters SA, SD and SS are never issued",
    range: "is outside the allowed range (1 to 99999)",
    length: "has the wrong number of digits",
    checksum: "fails the 11-test",
    zero: "consists of zeros only",
    fullPostcodeRequired: "must be complete (four digits and two letters)",
  },
};

const GENERAL = {
  nl: {
    "ttp.unreachable": "De pseudonimiseringsdienst is niet bereikbaar. Er is niets verstuurd; uw invoer staat nog in het formulier.",
    "ttp.timeout": "De pseudonimiseringsdienst reageert te traag. Er is niets verstuurd; uw invoer staat nog in het formulier.",
    "ttp.failed": "De pseudonimiseringsdienst gaf een fout. Er is niets verstuurd; uw invoer staat nog in het formulier.",
    "ttp.refused": "De pseudonimiseringsdienst weigert dit verzoek (toegang of herkomst). Er is niets verstuurd.",
    "ttp.rateLimited": "De pseudonimiseringsdienst is tijdelijk overbelast. Probeer het over een minuut opnieuw.",
    "ttp.rejected": "De pseudonimiseringsdienst wees het verzoek af. Er is niets verstuurd.",
    "ttp.malformedAnswer": "De pseudonimiseringsdienst gaf een onbruikbaar antwoord. Er is niets verstuurd.",
    "registry.unreachable": "De registratie is niet bereikbaar. Er is niets opgeslagen; uw invoer staat nog in het formulier.",
    "registry.timeout": "De registratie reageert te traag. Uw invoer staat nog in het formulier.",
    "registry.rejected": "De registratie wees de aanlevering af. Er is niets opgeslagen; uw invoer staat nog in het formulier.",
    "registry.failed": "De registratie gaf een fout. Er is niets opgeslagen; uw invoer staat nog in het formulier.",
    "pseudonym.nothingToMake": "Er kan geen pseudoniem gemaakt worden: vul de gemarkeerde velden in.",
    "policy.noTypes": "Deze registratie mag geen van de gevraagde pseudoniemtypen ontvangen. Er is niets verstuurd.",
    "config.invalid": "Het formulier is niet goed ingesteld voor pseudonimisering. Er is niets verstuurd.",
    aborted: "Afgebroken. Er is niets verstuurd.",
    validation: "Controleer de gemarkeerde velden.",
    optOut: "De patiënt maakt bezwaar: er is niets verstuurd, niet naar de pseudonimiseringsdienst en niet naar de registratie.",
    busy: "Bezig met pseudonimiseren en versturen…",
    retry: "Opnieuw proberen",
    internal: "Er ging iets mis in de pseudonimisering. Er is niets verstuurd.",
    submitted: "Verzonden. De registratie heeft alleen pseudoniemen en de klinische gegevens ontvangen.",
  },
  en: {
    "ttp.unreachable": "The pseudonymisation service cannot be reached. Nothing was sent; your input is still in the form.",
    "ttp.timeout": "The pseudonymisation service is too slow. Nothing was sent; your input is still in the form.",
    "ttp.failed": "The pseudonymisation service failed. Nothing was sent; your input is still in the form.",
    "ttp.refused": "The pseudonymisation service refuses this request (access or origin). Nothing was sent.",
    "ttp.rateLimited": "The pseudonymisation service is busy. Try again in a minute.",
    "ttp.rejected": "The pseudonymisation service rejected the request. Nothing was sent.",
    "ttp.malformedAnswer": "The pseudonymisation service gave an unusable answer. Nothing was sent.",
    "registry.unreachable": "The registry cannot be reached. Nothing was stored; your input is still in the form.",
    "registry.timeout": "The registry is too slow. Your input is still in the form.",
    "registry.rejected": "The registry rejected the submission. Nothing was stored; your input is still in the form.",
    "registry.failed": "The registry failed. Nothing was stored; your input is still in the form.",
    "pseudonym.nothingToMake": "No pseudonym can be made: fill in the marked fields.",
    "policy.noTypes": "This registry may receive none of the requested pseudonym types. Nothing was sent.",
    "config.invalid": "The form is not set up correctly for pseudonymisation. Nothing was sent.",
    aborted: "Cancelled. Nothing was sent.",
    validation: "Check the marked fields.",
    optOut: "The patient objects: nothing was sent, neither to the pseudonymisation service nor to the registry.",
    busy: "Pseudonymising and sending…",
    retry: "Try again",
    internal: "Something went wrong in the pseudonymisation. Nothing was sent.",
    submitted: "Sent. The registry received only pseudonyms and the clinical data.",
  },
};

/** The language to use: "nl" unless "en" is asked for. */
export function language(lang) {
  return lang === "en" ? "en" : "nl";
}

/** The label of a field in the language. */
export function fieldLabel(field, lang) {
  return FIELDS[language(lang)][field] ?? field;
}

/** A general message (`ttp.timeout`, `optOut`, …) in the language. */
export function text(key, lang) {
  const table = GENERAL[language(lang)];
  return table[key] ?? table.internal;
}

/** A sentence for the clinician for any error, in the language; never the value. */
export function describeError(error, lang) {
  const l = language(lang);
  const code = typeof error?.code === "string" ? error.code : "internal";
  const [field, rule] = code.split(".");
  if (FIELDS[l][field] && RULES[l][rule]) return `${FIELDS[l][field]} ${RULES[l][rule]}.`;
  const general = GENERAL[l][code] ?? GENERAL[l][code.split(".")[0] + ".failed"];
  return general ?? GENERAL[l].internal;
}
