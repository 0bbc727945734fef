//! Random identifiers handed to phones and customers.

use rand::distr::{Alphanumeric, SampleString};
use rand::Rng;

/// Alphabet without look-alikes (no 0/O, 1/I/L), for codes people read and type.
const UNAMBIGUOUS: &[u8] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";

/// A pass serial number: opaque, unique, safe in a URL path segment.
pub fn serial_number() -> String {
    format!("pm{}", Alphanumeric.sample_string(&mut rand::rng(), 22))
}

/// A secret of `len` alphanumeric characters (authentication tokens, download links).
pub fn secret(len: usize) -> String {
    Alphanumeric.sample_string(&mut rand::rng(), len)
}

/// A short referral code: 8 characters of an unambiguous alphabet (about 40 bits), random
/// so that codes cannot be guessed in sequence.
pub fn referral_code() -> String {
    let mut rng = rand::rng();
    (0..8)
        .map(|_| char::from(UNAMBIGUOUS[rng.random_range(0..UNAMBIGUOUS.len())]))
        .collect()
}

/// A numeric PIN of `len` digits.
pub fn pin(len: usize) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
        .collect()
}
