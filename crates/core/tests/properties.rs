//! Property tests of the normalisers: no panic on arbitrary Unicode up to
//! 10k characters; outputs stay in their alphabets; case, surrounding
//! whitespace and diacritics do not change the result; normalising twice
//! changes nothing.

#![cfg(test)]

use proptest::prelude::*;
use pseudoform_core::{fields::normalise, CalendarDate, Field, Rule};

fn today() -> CalendarDate {
    CalendarDate::new(2026, 11, 23).unwrap()
}

fn field() -> impl Strategy<Value = Field> {
    prop::sample::select(Field::ALL.to_vec())
}

/// The alphabet of each field's canonical form.
fn in_alphabet(field: Field, out: &str) -> bool {
    let chars = |f: fn(char) -> bool| out.chars().all(f);
    match field {
        Field::BirthName => !out.is_empty() && chars(|c| c.is_ascii_uppercase()),
        Field::Initial => out.len() == 1 && chars(|c| c.is_ascii_uppercase()),
        Field::BirthDate => out.len() == 8 && chars(|c| c.is_ascii_digit()),
        Field::Sex => ["0", "1", "2", "9"].contains(&out),
        Field::Postcode => {
            (out.len() == 6 || out.len() == 4) && out.chars().take(4).all(|c| c.is_ascii_digit())
        }
        Field::HouseNumber => {
            (1..=5).contains(&out.len()) && chars(|c| c.is_ascii_digit()) && !out.starts_with('0')
        }
        Field::HouseNumberAddition => {
            out.len() <= 6 && chars(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        }
        Field::Bsn => out.len() == 9 && chars(|c| c.is_ascii_digit()),
        Field::Mrn | Field::Provider => {
            !out.is_empty() && chars(|c| c.is_ascii_graphic() && c != '|')
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn never_panics_and_outputs_stay_in_alphabet(field in field(), raw in "\\PC{0,300}") {
        if let Ok(out) = normalise(field, &raw, today()) {
            prop_assert!(field == Field::HouseNumberAddition && out.is_empty() || in_alphabet(field, &out),
                "{field}: {out:?}");
        }
    }

    #[test]
    fn idempotent(field in field(), raw in "\\PC{0,40}") {
        // Every canonical form is a fixed point (a name of particles only,
        // VANDER, stays itself).
        if let Ok(once) = normalise(field, &raw, today()) {
            let twice = normalise(field, &once, today());
            prop_assert_eq!(twice.map(|s| s.to_string()), Ok(once.to_string()));
        }
    }

    #[test]
    fn case_and_surrounding_whitespace_do_not_matter(
        field in field(), raw in "[A-Za-z0-9 .'-]{1,30}", pre in "[ \t\n]{0,3}", post in "[ \t\n]{0,3}"
    ) {
        let plain = normalise(field, &raw, today()).map(|s| s.to_string());
        let padded = normalise(field, &format!("{pre}{raw}{post}"), today()).map(|s| s.to_string());
        prop_assert_eq!(&plain, &padded);
        if matches!(field, Field::BirthName | Field::Initial | Field::Postcode | Field::HouseNumberAddition | Field::Sex) {
            let upper = normalise(field, &raw.to_uppercase(), today()).map(|s| s.to_string());
            let lower = normalise(field, &raw.to_lowercase(), today()).map(|s| s.to_string());
            prop_assert_eq!(&upper, &lower);
        }
    }

    #[test]
    fn diacritics_do_not_matter_in_names(name in "[a-z]{1,12}( [a-z]{1,12}){0,2}", marks in prop::collection::vec(0usize..6, 12)) {
        // Put precomposed accents on some vowels and compare with the plain name.
        let accented: String = name.chars().zip(marks.iter().cycle()).map(|(c, m)| match (c, m) {
            ('a', 1) => 'á', ('a', 2) => 'ä', ('e', 1) => 'é', ('e', 2) => 'ë', ('i', 1) => 'ï',
            ('o', 1) => 'ö', ('o', 2) => 'ø', ('u', 1) => 'ü', ('c', _) => 'ç', ('n', 3) => 'ñ',
            (c, _) => c,
        }).collect();
        prop_assert_eq!(
            normalise(Field::BirthName, &name, today()).map(|s| s.to_string()),
            normalise(Field::BirthName, &accented, today()).map(|s| s.to_string())
        );
        // Decomposed accents (NFD) as well.
        let decomposed: String = name.chars().flat_map(|c| [c, '\u{301}']).collect();
        prop_assert_eq!(
            normalise(Field::BirthName, &name, today()).map(|s| s.to_string()),
            normalise(Field::BirthName, &decomposed, today()).map(|s| s.to_string())
        );
    }

    #[test]
    fn valid_bsns_pass_and_one_changed_digit_fails(digits in prop::collection::vec(0u8..10, 8), pos in 0usize..9, delta in 1u8..10) {
        let sum: u32 = digits.iter().zip((2..=9).rev()).map(|(d, w)| u32::from(*d) * w).sum();
        let check = sum % 11;
        prop_assume!(check < 10 && digits.iter().any(|d| *d != 0));
        let mut bsn: Vec<u8> = digits.clone();
        bsn.push(check as u8);
        let text: String = bsn.iter().map(|d| char::from(b'0' + d)).collect();
        prop_assert_eq!(normalise(Field::Bsn, &text, today()).map(|s| s.to_string()), Ok(text.clone()));
        // The 11-test catches every single-digit error.
        let mut wrong = bsn.clone();
        wrong[pos] = (wrong[pos] + delta) % 10;
        let wrong: String = wrong.iter().map(|d| char::from(b'0' + d)).collect();
        let result = normalise(Field::Bsn, &wrong, today());
        prop_assert!(matches!(result.map_err(|e| e.rule), Err(Rule::Checksum) | Err(Rule::Zero)));
    }
}

#[test]
fn ten_thousand_characters_of_anything() {
    let inputs = [
        "é".repeat(10_000),
        "\u{0}".repeat(10_000),
        "van ".repeat(2_500),
        "\u{10FFFF}".repeat(10_000),
        "9".repeat(10_000),
    ];
    for field in Field::ALL {
        for raw in &inputs {
            assert_eq!(
                normalise(field, raw, today()).unwrap_err().rule,
                Rule::TooLong
            );
        }
    }
}

#[test]
fn random_unicode_up_to_ten_thousand_chars() {
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 64,
        ..ProptestConfig::default()
    });
    runner
        .run(&("\\PC{0,10000}", field()), |(raw, field)| {
            match normalise(field, &raw, today()) {
                Ok(out) => prop_assert!(out.is_empty() || in_alphabet(field, &out)),
                Err(e) => {
                    prop_assert_eq!(e.field, field);
                    if raw.chars().count() > 256 {
                        prop_assert_eq!(e.rule, Rule::TooLong);
                    }
                }
            }
            Ok(())
        })
        .unwrap();
}
