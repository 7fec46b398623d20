//! Preparing a record for the TTP: for each requested pseudonym type, the
//! blinded input and its blind, or the reason the type is not made.
//!
//! Every given field is validated first: an invalid field stops the record
//! (the clinician must correct it). A field that is simply not given only
//! stops the types that need it, which are skipped with that reason.

use alloc::vec::Vec;

use crate::derivation::oprf_input_of;
use crate::oprf::{self, Blind, ELEMENT_BYTES};
use crate::{CalendarDate, Error, Field, FieldError, Identity, PseudonymType, Recipient};

/// A type that is ready to send: the blinded element for the TTP and the
/// blind the recipient will need to de-blind the evaluation.
#[derive(Debug)]
pub struct PreparedItem {
    /// The pseudonym type.
    pub pseudonym_type: PseudonymType,
    /// `r·HashToGroup(input)`: uniformly random to the TTP.
    pub blinded_input: [u8; ELEMENT_BYTES],
    /// The blind `r` (wiped on drop).
    pub blind: Blind,
}

/// What became of one requested type.
#[derive(Debug)]
pub enum Outcome {
    /// Made: send `blinded_input` to the TTP.
    Prepared(PreparedItem),
    /// Not made, because this field is missing (`<field>.required`) or is
    /// only a PC4 where the type needs PC6 (`postcode.fullPostcodeRequired`).
    Skipped {
        /// The pseudonym type.
        pseudonym_type: PseudonymType,
        /// The field and rule that stopped it.
        reason: FieldError,
    },
}

/// Every rule broken by a given field of `identity`, in field order. Fields
/// that are not given are not reported: whether they are needed depends on
/// the pseudonym types.
pub fn validate(identity: &Identity, today: CalendarDate) -> Vec<FieldError> {
    Field::ALL
        .into_iter()
        .filter(|field| identity.get(*field).is_some())
        .filter_map(|field| identity.normalised(field, today).err())
        .collect()
}

/// Prepares `types` (duplicates ignored) of `identity` for `recipient`.
///
/// `random` fills 64 bytes from a CSPRNG for each blind. Fails with the first
/// invalid field if any given field is invalid; otherwise returns one outcome
/// per distinct requested type, in request order.
pub fn prepare(
    identity: &Identity,
    recipient: &Recipient,
    types: &[PseudonymType],
    today: CalendarDate,
    mut random: impl FnMut(&mut [u8; 64]) -> Result<(), Error>,
) -> Result<Vec<Outcome>, Error> {
    if let Some(first) = validate(identity, today).first() {
        return Err(Error::Field(*first));
    }
    let mut outcomes = Vec::with_capacity(types.len());
    let mut seen = Vec::with_capacity(types.len());
    for ty in types.iter().copied() {
        if seen.contains(&ty) {
            continue;
        }
        seen.push(ty);
        let input = match ty.canonical_input(identity, today) {
            Ok(input) => input,
            Err(reason) => {
                outcomes.push(Outcome::Skipped {
                    pseudonym_type: ty,
                    reason,
                });
                continue;
            }
        };
        let oprf_input = oprf_input_of(ty, &input, recipient)?;
        let mut wide = zeroize::Zeroizing::new([0u8; 64]);
        random(&mut wide)?;
        let blind = Blind::from_uniform_bytes(&wide)?;
        let blinded_input = oprf::blind(oprf_input.as_ref(), &blind)?;
        outcomes.push(Outcome::Prepared(PreparedItem {
            pseudonym_type: ty,
            blinded_input,
            blind,
        }));
    }
    Ok(outcomes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oprf::ServerKey;
    use crate::Rule;

    fn today() -> CalendarDate {
        CalendarDate::new(2026, 11, 23).unwrap()
    }

    fn counter() -> impl FnMut(&mut [u8; 64]) -> Result<(), Error> {
        let mut n = 0u8;
        move |bytes| {
            n += 1;
            bytes.fill(n);
            Ok(())
        }
    }

    fn identity() -> Identity {
        Identity::new()
            .with(Field::BirthName, "van der Berg-Jansen")
            .with(Field::BirthDate, "1-2-1980")
            .with(Field::Sex, "V")
            .with(Field::Initial, "J.P.")
            .with(Field::Postcode, "1234 AB")
    }

    #[test]
    fn prepares_given_types_and_skips_missing_ones_with_reason() {
        let recipient =
            Recipient::new("oin:00000001000000001000", "kwaliteitsregistratie-a").unwrap();
        let types = [
            PseudonymType::Nggv,
            PseudonymType::Rgg,
            PseudonymType::Mrn,
            PseudonymType::Nggv,
        ];
        let outcomes = prepare(&identity(), &recipient, &types, today(), counter()).unwrap();
        assert_eq!(outcomes.len(), 3);
        let key = ServerKey::from_uniform_bytes(&[7; 64]).unwrap();
        match &outcomes[0] {
            Outcome::Prepared(item) => {
                // The de-blinded evaluation is k·H(input), independent of the blind.
                let n = oprf::unblind(&item.blind, &key.evaluate(&item.blinded_input).unwrap())
                    .unwrap();
                let input = oprf_input_of(PseudonymType::Nggv, "BERGJANS|19800201|2|J", &recipient)
                    .unwrap();
                let direct = oprf::unblind(
                    &Blind::from_uniform_bytes(&[9; 64]).unwrap(),
                    &key.evaluate(
                        &oprf::blind(
                            input.as_ref(),
                            &Blind::from_uniform_bytes(&[9; 64]).unwrap(),
                        )
                        .unwrap(),
                    )
                    .unwrap(),
                )
                .unwrap();
                assert_eq!(n, direct);
            }
            Outcome::Skipped { .. } => panic!("NGGV should be prepared"),
        }
        assert!(
            matches!(&outcomes[1], Outcome::Prepared(item) if item.pseudonym_type == PseudonymType::Rgg)
        );
        match &outcomes[2] {
            Outcome::Skipped {
                pseudonym_type,
                reason,
            } => {
                assert_eq!(*pseudonym_type, PseudonymType::Mrn);
                assert_eq!(reason.code(), "provider.required");
            }
            Outcome::Prepared(_) => panic!("MRN has no inputs"),
        }
    }

    #[test]
    fn an_invalid_given_field_stops_the_record_and_validate_lists_all() {
        let recipient = Recipient::new("oin:1", "s").unwrap();
        let bad = identity()
            .with(Field::Bsn, "123456789")
            .with(Field::Postcode, "0000AA");
        let errors = validate(&bad, today());
        assert_eq!(
            errors.iter().map(FieldError::code).collect::<Vec<_>>(),
            ["postcode.format", "bsn.checksum"]
        );
        let err = prepare(&bad, &recipient, &[PseudonymType::Gg], today(), counter())
            .err()
            .unwrap();
        assert_eq!(
            err,
            Error::Field(FieldError::new(Field::Postcode, Rule::Format))
        );
    }

    #[test]
    fn blinds_differ_per_type_and_randomness_failure_is_an_error() {
        let recipient = Recipient::new("oin:1", "s").unwrap();
        let outcomes = prepare(
            &identity(),
            &recipient,
            &[PseudonymType::Gg, PseudonymType::Ngg],
            today(),
            counter(),
        )
        .unwrap();
        let blinded: Vec<[u8; 32]> = outcomes
            .iter()
            .filter_map(|o| match o {
                Outcome::Prepared(item) => Some(item.blinded_input),
                Outcome::Skipped { .. } => None,
            })
            .collect();
        assert_eq!(blinded.len(), 2);
        assert_ne!(blinded[0], blinded[1]);
        let failing = |_: &mut [u8; 64]| Err(Error::RandomUnavailable);
        assert_eq!(
            prepare(
                &identity(),
                &recipient,
                &[PseudonymType::Gg],
                today(),
                failing
            )
            .err(),
            Some(Error::RandomUnavailable)
        );
    }
}
