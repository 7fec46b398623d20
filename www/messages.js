// Dutch messages for the error codes of the method. A message names the
// field and the rule, never the value the clinician typed.
const FIELD_NL = {
  birthName: "Geboortenaam", birthDate: "Geboortedatum", sex: "Geslacht", initial: "Voorletter",
  postcode: "Postcode", houseNumber: "Huisnummer", houseNumberAddition: "Toevoeging",
  bsn: "BSN", mrn: "Patiëntnummer", provider: "Zorgaanbieder",
  recipientOrganization: "Ontvangende organisatie", recipientScope: "Ontvangende registratie",
};

const RULE_NL = {
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
};

/** A Dutch sentence for a PseudoformError, or a general one for anything else. */
export function describeError(error) {
  const code = typeof error?.code === "string" ? error.code : "";
  const [field, rule] = code.split(".");
  if (FIELD_NL[field] && RULE_NL[rule]) return `${FIELD_NL[field]} ${RULE_NL[rule]}.`;
  if (code === "type.unknown") return "Onbekend pseudoniemtype.";
  return "Er ging iets mis bij het verwerken van de invoer.";
}
