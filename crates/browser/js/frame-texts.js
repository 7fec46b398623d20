// The texts of frame mode that the in-page binding never shows (the frame's
// log-in control, its opt-out and select texts, the iframe's title), in
// Dutch (default) and English; kept out of messages.js so that the in-page
// bundle does not carry them. Error messages of frame mode (`frame.*`,
// `login.required`) are in messages.js, as every error's.
import { language } from "./messages.js";

const TEXTS = {
  nl: {
    loginButton: "Inloggen bij uw zorgaanbieder",
    loggedIn: "U bent ingelogd bij uw zorgaanbieder.",
    frameTitle: "Patiëntgegevens (afgeschermd: de pagina van de registratie kan ze niet lezen)",
    optOutLabel: "De patiënt maakt bezwaar tegen aanlevering aan de registratie",
    choose: "— kies —",
    sexOptions: "1 man|2 vrouw|0 onbekend|9 niet van toepassing",
    cleared: "De patiëntgegevens zijn leeggemaakt voor de volgende patiënt.",
  },
  en: {
    loginButton: "Log in at your care provider",
    loggedIn: "You are logged in at your care provider.",
    frameTitle: "Patient identity (protected: the registry's page cannot read it)",
    optOutLabel: "The patient objects to the submission to the registry",
    choose: "— choose —",
    sexOptions: "1 male|2 female|0 unknown|9 not applicable",
    cleared: "The patient's identity was cleared for the next patient.",
  },
};

/** @typedef {keyof typeof TEXTS.nl} FrameTextKey */

/**
 * A text of frame mode in the language.
 * @param {FrameTextKey} key
 * @param {unknown} lang
 */
export function frameText(key, lang) {
  return TEXTS[language(lang)][key];
}
