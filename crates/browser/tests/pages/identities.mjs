// Realistic, generated Dutch identities for the leak audit: names with
// particles and diacritics, every accepted date format, both sexes,
// postcodes typed in several ways, house numbers with additions, valid BSNs
// (11-test) with and without dots, and local patient numbers. Seeded, so a
// failing run can be repeated exactly.

// prettier-ignore
const SURNAMES = [
  "Jansen", "de Vries", "van den Berg", "Bakker", "van Dijk", "Visser", "Smit", "Meijer", "de Boer",
  "Mulder", "de Groot", "Bos", "Vos", "Peters", "Hendriks", "van Leeuwen", "Dekker", "Brouwer", "de Wit",
  "Dijkstra", "de Graaf", "van der Meer", "van der Linden", "Kok", "Jacobs", "de Haan", "Vermeulen",
  "van den Heuvel", "van der Veen", "van den Broek", "de Bruijn", "de Jong", "Schouten", "van Beek",
  "Hoekstra", "Verhoeven", "van Dam", "van der Wal", "Huisman", "Kuipers", "Veenstra", "van den Brink",
  "Scholten", "van Wijk", "Timmermans", "van Loon", "Willemsen", "de Lange", "van Dongen", "de Koning",
  "van der Laan", "Driessen", "van Doorn", "Hermans", "van der Horst", "Molenaar", "van de Pol", "Verbeek",
  "in 't Veld", "van 't Hof", "d'Ancona", "'s-Gravesande", "ter Horst", "ten Cate", "op de Weegh",
  "Çelik", "Özdemir", "Yılmaz", "Müller", "Groß", "Sørensen", "Ødegaard", "Nguyễn", "Łukaszewicz",
  "Ñúñez", "Gonçalves", "Brontë", "Ĳzerman", "Bœuf", "Ærtebjerg", "von Bülow", "de la Cruz", "del Río",
];
// prettier-ignore
const GIVEN = ["Jan", "Maria", "Pieter", "Anna", "Johannes", "Elisabeth", "Cornelis", "Hendrika", "Émile",
  "Ömer", "Žofie", "Lotte", "Daan", "Sanne", "Fatima", "Mohamed", "Ilse", "Bram", "Ĳsbrand", "Åsa"];

/** A small seeded PRNG (mulberry32). */
function random(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const pad = (n, w = 2) => String(n).padStart(w, "0");

/** `count` identities from `seed`, each with what to type and the date parts. */
export function generateIdentities(count, seed = 20261123) {
  const rnd = random(seed);
  const pick = (list) => list[Math.floor(rnd() * list.length)];
  const int = (lo, hi) => lo + Math.floor(rnd() * (hi - lo + 1));
  const identities = [];
  const seen = new Set();
  while (identities.length < count) {
    let surname = pick(SURNAMES);
    if (rnd() < 0.2) surname = `${surname}-${pick(SURNAMES).replace(/^.* /, "")}`;
    if (rnd() < 0.1) surname = surname.toUpperCase();
    const given = pick(GIVEN);
    const year = int(1925, 2020),
      month = int(1, 12),
      day = int(1, 28);
    const formats = [
      `${pad(day)}-${pad(month)}-${year}`,
      `${day}-${month}-${year}`,
      `${year}-${pad(month)}-${pad(day)}`,
      `${pad(day)}/${pad(month)}/${year}`,
      `${pad(day)}.${pad(month)}.${year}`,
    ];
    let letters;
    do {
      letters = String.fromCharCode(65 + int(0, 25)) + String.fromCharCode(65 + int(0, 25));
    } while (["SA", "SD", "SS"].includes(letters));
    const digits = String(int(1000, 9999));
    const postcodeForms = [`${digits}${letters}`, `${digits} ${letters}`, `${digits} ${letters.toLowerCase()}`];
    let bsn;
    do {
      const d = Array.from({ length: 8 }, () => int(0, 9));
      const check = d.reduce((s, x, i) => s + x * (9 - i), 0) % 11;
      bsn = check < 10 && d.some((x) => x !== 0) ? d.join("") + check : undefined;
    } while (!bsn || seen.has(bsn));
    seen.add(bsn);
    const bsnTyped = rnd() < 0.4 ? `${bsn.slice(0, 4)}.${bsn.slice(4, 6)}.${bsn.slice(6)}` : bsn;
    identities.push({
      typed: {
        birthName: surname,
        initial: rnd() < 0.5 ? `${given[0]}.` : given,
        birthDate: pick(formats),
        sex: rnd() < 0.5 ? "1" : "2",
        postcode: pick(postcodeForms),
        houseNumber: String(int(1, 350)),
        houseNumberAddition: rnd() < 0.3 ? pick(["A", "b", "2", "bis", "III", "-1"]) : "",
        bsn: bsnTyped,
        mrn: rnd() < 0.5 ? `PAT-${int(100000, 999999)}` : `Z${int(1000000, 9999999)}`,
      },
      date: { year, month, day },
      bsn,
      postcode: { digits, letters },
    });
  }
  return identities;
}

/**
 * Every recognisable form of an identity's values that must never appear
 * anywhere: as typed, upper and lower case, normalised (given by the page's
 * own normalise), the canonical inputs of every type, dates as digits in
 * any order, postcode with and without space, BSN with and without dots.
 * Forms shorter than 6 characters are left out: they occur by chance in
 * random base64 and would prove nothing.
 */
export function needlesOf(identity, normalised = {}, canonicalInputs = []) {
  const { year, month, day } = identity.date;
  const t = identity.typed;
  const forms = new Set([
    t.birthName,
    t.birthName.toUpperCase(),
    t.birthName.toLowerCase(),
    t.birthDate,
    t.mrn,
    t.bsn,
    identity.bsn,
    `${identity.bsn.slice(0, 4)}.${identity.bsn.slice(4, 6)}.${identity.bsn.slice(6)}`,
    `${identity.bsn.slice(0, 3)}.${identity.bsn.slice(3, 6)}.${identity.bsn.slice(6)}`,
    `${year}${pad(month)}${pad(day)}`,
    `${pad(day)}${pad(month)}${year}`,
    `${pad(month)}${pad(day)}${year}`,
    `${year}${pad(day)}${pad(month)}`,
    `${year}-${pad(month)}-${pad(day)}`,
    `${pad(day)}-${pad(month)}-${year}`,
    `${pad(day)}/${pad(month)}/${year}`,
    `${pad(day)}.${pad(month)}.${year}`,
    `${identity.postcode.digits}${identity.postcode.letters}`,
    `${identity.postcode.digits} ${identity.postcode.letters}`,
    `${identity.postcode.digits}${identity.postcode.letters.toLowerCase()}`,
    `${identity.postcode.digits} ${identity.postcode.letters.toLowerCase()}`,
    ...Object.values(normalised),
    ...canonicalInputs,
  ]);
  return [...forms].filter((f) => typeof f === "string" && f.length >= 6);
}
