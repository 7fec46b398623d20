//! Prints the `derivations` section of `docs/vectors/method-v1.json`: for a
//! few canonical input values and two recipients, every intermediate value of
//! the chain with a fixed blind and server key (those of RFC 9497 A.1.1).
//! The vector test checks the file against the code; this example shows how
//! the file was made. Run: `cargo run -p pseudoform-core --example derivation_vectors`.

// An example, not a test: it stops at the first fault.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use pseudoform_core::derivation::{identifier_json, oprf_input_of};
use pseudoform_core::encoding::encode;
use pseudoform_core::oprf::{self, Blind, ServerKey};
use pseudoform_core::{PseudonymType, Recipient};

fn main() {
    let blind: [u8; 32] = hex32("64d37aed22a27f5191de1c1d69fadb899d8862b58eb4220029e036ec4c1f6706");
    let key: [u8; 32] = hex32("5ebcea5ee37023ccb9fc2d2019f9d7737be85591ae8652ffa9ef0f4d37063b0e");
    let registry_a = ("oin:00000001000000001000", "kwaliteitsregistratie-a");
    let registry_b = ("oin:00000001000000002000", "kwaliteitsregistratie-b");
    let cases = [
        ("B", "999990007", registry_a),
        ("B", "999990007", registry_b),
        ("NGGV", "BERGJANS|19800201|2|J", registry_a),
        ("NGGV", "BERGJANS|19800201|2|J", registry_b),
        ("sNGGV", "BERG|19800201|2|J", registry_a),
        ("NGG", "BERGJANS|19800201|2", registry_a),
        ("sNGG", "BERG|19800201|2", registry_a),
        ("C", "1234AB|19800201|2", registry_a),
        ("RGG", "1234|19800201|2", registry_a),
        ("GG", "19800201|2", registry_a),
        ("A", "1234AB|12|", registry_a),
        ("A", "1234AB|12|A2", registry_a),
        ("MRN", "ura:00000001|PAT-0001", registry_a),
        ("MRN", "ura:00000002|PAT-0001", registry_a),
        // `"` and `\` are escaped in the identifier's JSON (method §5.1).
        ("MRN", "ura:00000001|A\"12\\3", registry_a),
    ];
    let r = Blind::from_bytes(&blind).unwrap();
    let k = ServerKey::from_bytes(&key).unwrap();
    let mut out = Vec::new();
    for (code, input, (org, scope)) in cases {
        let ty: PseudonymType = code.parse().unwrap();
        let recipient = Recipient::new(org, scope).unwrap();
        let oprf_input = oprf_input_of(ty, input, &recipient).unwrap();
        let blinded = oprf::blind(oprf_input.as_ref(), &r).unwrap();
        let evaluated = k.evaluate(&blinded).unwrap();
        let pseudonym = oprf::unblind(&r, &evaluated).unwrap();
        out.push(format!(
            concat!(
                "    {{ \"type\": {:?}, \"canonicalInput\": {:?}, \"recipientOrganization\": {:?}, \"recipientScope\": {:?},\n",
                "      \"identifier\": {:?},\n",
                "      \"oprfInput\": {:?}, \"blind\": {:?}, \"blindedInput\": {:?},\n",
                "      \"serverKey\": {:?}, \"evaluatedElement\": {:?}, \"pseudonym\": {:?} }}"
            ),
            code,
            input,
            org,
            scope,
            identifier_json(ty.identifier_type(), input).as_str(),
            encode(oprf_input.as_ref()),
            encode(&blind),
            encode(&blinded),
            encode(&key),
            encode(&evaluated),
            encode(&pseudonym),
        ));
    }
    println!("  \"derivations\": [\n{}\n  ]", out.join(",\n"));
}

fn hex32(s: &str) -> [u8; 32] {
    hex::decode(s).unwrap().try_into().unwrap()
}
