//! Cross-check of the hand-written OPRF against the `voprf` crate: for the
//! same inputs and blinds, the same blinded and evaluated elements and the
//! same RFC 9497 output.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use curve25519_dalek::scalar::Scalar;
use pseudoform_core::oprf::{self, Blind, ServerKey};
use rand::{RngCore, SeedableRng};
use voprf::{OprfClient, OprfServer, Ristretto255};

#[test]
fn same_elements_as_voprf() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(9497);
    for round in 0..64 {
        let mut input = vec![0u8; (round * 7) % 80];
        rng.fill_bytes(&mut input);
        let mut wide = [0u8; 64];
        rng.fill_bytes(&mut wide);
        let blind_scalar = Scalar::from_bytes_mod_order_wide(&wide);
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);

        let server = OprfServer::<Ristretto255>::new_from_seed(&seed, b"cross-check").unwrap();
        let key = ServerKey::derive(&seed, b"cross-check").unwrap();

        let theirs =
            OprfClient::<Ristretto255>::deterministic_blind_unchecked(&input, blind_scalar)
                .unwrap();
        let r = Blind::from_bytes(&blind_scalar.to_bytes()).unwrap();
        let ours = oprf::blind(&input, &r).unwrap();
        assert_eq!(&theirs.message.serialize()[..], ours.as_slice());

        let their_eval = server.blind_evaluate(&theirs.message);
        let our_eval = key.evaluate(&ours).unwrap();
        assert_eq!(&their_eval.serialize()[..], our_eval.as_slice());

        let their_out = theirs.state.finalize(&input, &their_eval).unwrap();
        let n = oprf::unblind(&r, &our_eval).unwrap();
        assert_eq!(&their_out[..], &oprf::finalize(&input, &n).unwrap()[..]);
    }
}
