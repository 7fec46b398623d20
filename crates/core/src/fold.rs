//! Folding of Latin letters to the 26 letters A–Z.
//!
//! A hand-written table covers the blocks in which Dutch and European names are
//! written: Basic Latin, Latin-1 Supplement, Latin Extended-A, the Latin
//! Extended-B letters of Romanian, Vietnamese and pinyin, and the Vietnamese
//! part of Latin Extended Additional. Diacritics are stripped (é→E, ü→U) and
//! ligatures expanded (ß→SS, æ→AE, œ→OE, ĳ→IJ, þ→TH). A Unicode
//! normalisation crate would do the same with tables many times larger than
//! the whole browser module; the test `fold_agrees_with_nfd` checks this table
//! against canonical decomposition for every character it covers.

/// What one character folds to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Folded {
    /// One letter A–Z (ASCII uppercase).
    One(u8),
    /// A ligature that expands to two letters.
    Two(u8, u8),
    /// A combining mark (decomposed diacritic): dropped.
    Mark,
    /// A letter outside the covered blocks (Greek, Cyrillic, CJK, …).
    Unsupported,
    /// Not a letter at all.
    NotLetter,
}

/// U+00C0..=U+00FF. `*` marks a ligature handled in [`fold_char`], `.` the
/// two signs × and ÷.
const LATIN1: &[u8; 64] = b"AAAAAA*CEEEEIIIIDNOOOOO.OUUUUY**AAAAAA*CEEEEIIIIDNOOOOO.OUUUUY*Y";

/// U+0100..=U+017F. `*` marks Ĳ ĳ Œ œ, handled in [`fold_char`].
const LATIN_EXT_A: &[u8; 128] = b"AAAAAACCCCCCCCDDDDEEEEEEEEEEGGGGGGGGHHHHIIIIIIIIII**JJKKKLLLLLLLLLLNNNNNNNNNOOOOOO**RRRRRRSSSSSSSSTTTTTTUUUUUUUUUUUUWWYYYZZZZZZS";

/// U+1EA0..=U+1EF9: Vietnamese vowels with stacked diacritics.
const VIETNAMESE: &[u8; 90] =
    b"AAAAAAAAAAAAAAAAAAAAAAAAEEEEEEEEEEEEEEEEIIIIOOOOOOOOOOOOOOOOOOOOOOOOUUUUUUUUUUUUUUYYYYYYYY";

fn from_table(table: &[u8], offset: u32, c: char) -> Folded {
    let index = (c as u32).wrapping_sub(offset) as usize;
    match table.get(index) {
        Some(b'.') | None => Folded::NotLetter,
        Some(&letter) => Folded::One(letter),
    }
}

/// Folds one character.
pub(crate) fn fold_char(c: char) -> Folded {
    match c {
        'A'..='Z' => Folded::One(c as u8),
        'a'..='z' => Folded::One(c as u8 - b'a' + b'A'),
        '\u{300}'..='\u{36F}' => Folded::Mark,
        'Æ' | 'æ' => Folded::Two(b'A', b'E'),
        'Þ' | 'þ' => Folded::Two(b'T', b'H'),
        'ß' | 'ẞ' => Folded::Two(b'S', b'S'),
        'Ĳ' | 'ĳ' => Folded::Two(b'I', b'J'),
        'Œ' | 'œ' => Folded::Two(b'O', b'E'),
        '\u{C0}'..='\u{FF}' => from_table(LATIN1, 0xC0, c),
        '\u{100}'..='\u{17F}' => from_table(LATIN_EXT_A, 0x100, c),
        '\u{1EA0}'..='\u{1EF9}' => from_table(VIETNAMESE, 0x1EA0, c),
        'Ơ' | 'ơ' | 'Ǒ' | 'ǒ' | 'Ǫ' | 'ǫ' => Folded::One(b'O'),
        'Ư' | 'ư' | 'Ǔ' | 'ǔ' | '\u{1D5}'..='\u{1DC}' => Folded::One(b'U'),
        'Ǎ' | 'ǎ' => Folded::One(b'A'),
        'Ǐ' | 'ǐ' => Folded::One(b'I'),
        'Ǧ' | 'ǧ' => Folded::One(b'G'),
        'Ǩ' | 'ǩ' => Folded::One(b'K'),
        'Ǹ' | 'ǹ' => Folded::One(b'N'),
        'Ș' | 'ș' => Folded::One(b'S'),
        'Ț' | 'ț' => Folded::One(b'T'),
        c if c.is_alphabetic() => Folded::Unsupported,
        _ => Folded::NotLetter,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use unicode_normalization::char::{decompose_canonical, is_combining_mark};

    /// Base letter of `c` by canonical decomposition, if it is ASCII.
    fn nfd_base(c: char) -> Option<u8> {
        let mut base = None;
        decompose_canonical(c, |d| {
            if base.is_none() && !is_combining_mark(d) {
                base = Some(d);
            }
        });
        base.filter(char::is_ascii_alphabetic)
            .map(|b| b.to_ascii_uppercase() as u8)
    }

    #[test]
    fn fold_agrees_with_nfd() {
        let mut checked = 0;
        for cp in 0u32..0x2000 {
            let Some(c) = char::from_u32(cp) else {
                continue;
            };
            match fold_char(c) {
                Folded::One(letter) => {
                    // Letters without a canonical decomposition (đ, ł, ø, ħ, ı, ŀ, ŋ, ĸ, ſ, ŉ)
                    // fold by their look; all others must agree with NFD.
                    if let Some(base) = nfd_base(c) {
                        assert_eq!(letter, base, "U+{cp:04X}");
                    } else {
                        assert!(
                            "ĐđÐðŁłØøĦħıĿŀŊŋĸſŦŧŉ".contains(c) || c.is_ascii_alphabetic(),
                            "U+{cp:04X} folds without a decomposition"
                        );
                    }
                    checked += 1;
                }
                Folded::Two(..) => assert!("ÆæÞþßẞĲĳŒœ".contains(c)),
                Folded::Mark => assert!(is_combining_mark(c)),
                Folded::Unsupported => assert!(c.is_alphabetic()),
                Folded::NotLetter => assert!(!c.is_alphabetic() || c == '×' || c == '÷'),
            }
        }
        assert!(checked > 300, "only {checked} letters covered");
    }

    #[test]
    fn ligatures_and_specials() {
        assert_eq!(fold_char('ß'), Folded::Two(b'S', b'S'));
        assert_eq!(fold_char('ĳ'), Folded::Two(b'I', b'J'));
        assert_eq!(fold_char('ø'), Folded::One(b'O'));
        assert_eq!(fold_char('ł'), Folded::One(b'L'));
        assert_eq!(fold_char('×'), Folded::NotLetter);
        assert_eq!(fold_char('Ж'), Folded::Unsupported);
        assert_eq!(fold_char('\u{301}'), Folded::Mark);
        assert_eq!(fold_char('7'), Folded::NotLetter);
    }
}
