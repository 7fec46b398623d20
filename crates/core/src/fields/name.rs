//! Birth name and initial.
//!
//! Birth name: fold to A–Z, drop leading name particles (voorvoegsels) when
//! more name follows, keep letters only. "van der Berg-Jansen" → `BERGJANSEN`;
//! the pseudonym types cut this to 8 (`BERGJANS`) or 4 (`BERG`) letters.

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use zeroize::Zeroizing;

use crate::fold::{fold_char, Folded};
use crate::Rule;

/// The name particles (voorvoegsels) dropped at the start of a birth name,
/// folded to uppercase. Multi-word particles ("van der", "in 't", "op de")
/// are sequences of these words. Part of method v1: changing this list makes
/// a new method version.
pub const PARTICLES: &[&str] = &[
    "'S", "'T", "AAN", "BIJ", "D'", "DA", "DAL", "DALLA", "DAS", "DE", "DEGLI", "DEI", "DEL",
    "DELLA", "DELLE", "DEM", "DEN", "DER", "DES", "DI", "DO", "DOS", "DU", "HET", "IN", "L'", "LA",
    "LAS", "LE", "LES", "LOS", "OP", "OVER", "TE", "TEN", "TER", "TOT", "UIT", "VAN", "VOM", "VON",
    "VOOR", "ZU", "ZUM", "ZUR",
];

fn is_apostrophe(c: char) -> bool {
    matches!(
        c,
        '\'' | '\u{2019}' | '\u{2018}' | '`' | '\u{B4}' | '\u{2BC}'
    )
}

fn is_separator(c: char) -> bool {
    c.is_whitespace() || matches!(c, '-' | '\u{2010}' | '\u{2011}' | '\u{2013}' | '.')
}

/// Words of folded letters (and apostrophes), wiped on drop.
type Words = Vec<Zeroizing<String>>;

/// Splits one word at its apostrophes where that yields a particle: after
/// the apostrophe when what precedes it is one (`D'|ANCONA`), before it when
/// what follows is one (`VAN|'T`, `IN|'T`). Other apostrophes stay inside the
/// word (`O'BRIEN`), where they are dropped with the other non-letters.
fn split_at_apostrophes(word: &str, into: &mut Words) {
    let mut current = Zeroizing::new(String::new());
    for (i, piece) in word.split('\'').enumerate() {
        if i == 0 {
            current.push_str(piece);
            continue;
        }
        // Concatenation rather than `format!` (size of the browser module).
        let mut closing = Zeroizing::new(String::with_capacity(current.len() + 1));
        closing.push_str(&current);
        closing.push('\'');
        let mut opening = Zeroizing::new(String::with_capacity(piece.len() + 1));
        opening.push('\'');
        opening.push_str(piece);
        if !current.is_empty() && is_particle(&closing) {
            into.push(closing);
            current.clear();
            current.push_str(piece);
        } else if is_particle(&opening) {
            if !current.is_empty() {
                into.push(core::mem::take(&mut current));
            }
            into.push(opening);
        } else {
            current.push('\'');
            current.push_str(piece);
        }
    }
    if !current.is_empty() {
        into.push(current);
    }
}

/// Splits a name into words of folded letters at spaces, hyphens and dots,
/// then at apostrophes where a particle results (see
/// [`split_at_apostrophes`]). Returns the words before the first comma and
/// those after it.
fn words(value: &str) -> Result<(Words, Words), Rule> {
    let mut before = Words::new();
    let mut after = Words::new();
    let mut seen_comma = false;
    let mut word = Zeroizing::new(String::new());
    for c in value.chars() {
        if is_separator(c) || c == ',' {
            split_at_apostrophes(&word, if seen_comma { &mut after } else { &mut before });
            word.clear();
            if c == ',' {
                if seen_comma {
                    return Err(Rule::Format);
                }
                seen_comma = true;
            }
            continue;
        }
        if is_apostrophe(c) {
            word.push('\'');
            continue;
        }
        match fold_char(c) {
            Folded::One(a) => word.push(char::from(a)),
            Folded::Two(a, b) => {
                word.push(char::from(a));
                word.push(char::from(b));
            }
            Folded::Mark => {}
            Folded::Unsupported => return Err(Rule::UnsupportedLetter),
            Folded::NotLetter => return Err(Rule::Characters),
        }
    }
    split_at_apostrophes(&word, if seen_comma { &mut after } else { &mut before });
    Ok((before, after))
}

fn is_particle(word: &str) -> bool {
    PARTICLES.contains(&word)
}

/// Normalises a birth name (already trimmed, non-empty).
pub(super) fn birth_name(value: &str) -> Result<String, Rule> {
    let (before, after) = words(value)?;
    // "Berg, van der": particles written after a comma are dropped too; any
    // other text after a comma (a given name?) is refused as ambiguous.
    if !after.iter().all(|w| is_particle(w)) {
        return Err(Rule::Format);
    }
    // Drop leading particles only when a non-particle word follows.
    let start = before.iter().position(|w| !is_particle(w)).unwrap_or(0);
    let name: String = before
        .iter()
        .skip(start)
        .flat_map(|w| w.chars())
        .filter(char::is_ascii_uppercase)
        .collect();
    if name.is_empty() {
        return Err(Rule::NoLetters);
    }
    Ok(name)
}

/// Normalises an initial: the first letter of the first given name.
/// Accepts "J.", "J.P.", "jan", "Jan Peter"; refuses digits and symbols.
pub(super) fn initial(value: &str) -> Result<String, Rule> {
    let mut first = None;
    for c in value.chars() {
        if is_separator(c) || is_apostrophe(c) {
            continue;
        }
        match fold_char(c) {
            Folded::One(a) | Folded::Two(a, _) => {
                first = first.or(Some(a));
            }
            Folded::Mark => {}
            Folded::Unsupported => return Err(Rule::UnsupportedLetter),
            Folded::NotLetter => return Err(Rule::Characters),
        }
    }
    first
        .map(|a| char::from(a).to_string())
        .ok_or(Rule::NoLetters)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn particles_are_sorted_and_uppercase() {
        let mut sorted = PARTICLES.to_vec();
        sorted.sort_unstable();
        assert_eq!(sorted, PARTICLES);
        assert!(PARTICLES
            .iter()
            .all(|p| p.chars().all(|c| c.is_ascii_uppercase() || c == '\'')));
    }

    #[test]
    fn names() {
        assert_eq!(birth_name("van der Berg-Jansen").unwrap(), "BERGJANSEN");
        assert_eq!(birth_name("Berg, van der").unwrap(), "BERG");
        assert_eq!(birth_name("in 't Veld").unwrap(), "VELD");
        assert_eq!(birth_name("d'Ancona").unwrap(), "ANCONA");
        assert_eq!(birth_name("O'Brien").unwrap(), "OBRIEN");
        assert_eq!(birth_name("van't Hof").unwrap(), "HOF");
        assert_eq!(birth_name("in\u{2019}t Veld").unwrap(), "VELD");
        assert_eq!(birth_name("d' Ancona").unwrap(), "ANCONA");
        assert_eq!(birth_name("'t").unwrap(), "T");
        assert_eq!(birth_name("van der").unwrap(), "VANDER");
        assert_eq!(birth_name("De").unwrap(), "DE");
        assert_eq!(birth_name("'s-Gravesande").unwrap(), "GRAVESANDE");
        assert_eq!(birth_name("Jansen, Piet"), Err(Rule::Format));
        assert_eq!(birth_name("Jansen2"), Err(Rule::Characters));
        assert_eq!(birth_name("Иванов"), Err(Rule::UnsupportedLetter));
        assert_eq!(birth_name("- '"), Err(Rule::NoLetters));
    }

    #[test]
    fn initials() {
        assert_eq!(initial("J.P.").unwrap(), "J");
        assert_eq!(initial("émile").unwrap(), "E");
        assert_eq!(initial("Ĳsbrand").unwrap(), "I");
        assert_eq!(initial("1"), Err(Rule::Characters));
        assert_eq!(initial(". ."), Err(Rule::NoLetters));
    }
}
