//! Any provider that puts a MAC of the body in a header: the header's name,
//! the algorithm (SHA-256, SHA-1, SHA-512), the encoding (hex, base64), an
//! optional prefix (`sha256=`), and optionally a timestamp header whose
//! value is signed too (`"{timestamp}.{body}"`) and must be within 300 s.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use serde::Deserialize;
use sha1::Sha1;
use sha2::{Sha256, Sha512};

use super::{Secret, Signed, VerifyError, fresh};

/// The configuration of the `hmac` scheme.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HmacScheme {
    /// The header holding the MAC (any case).
    pub header: String,
    /// The hash (default `sha256`).
    #[serde(default)]
    pub algorithm: Algorithm,
    /// How the MAC is written (default `hex`).
    #[serde(default)]
    pub encoding: Encoding,
    /// Text before the MAC in the header, e.g. `sha256=`.
    #[serde(default)]
    pub prefix: String,
    /// A header holding UNIX seconds, signed as `"{timestamp}.{body}"`.
    #[serde(default)]
    pub timestamp_header: Option<String>,
}

/// The hash of an HMAC.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    /// HMAC-SHA256.
    #[default]
    Sha256,
    /// HMAC-SHA1 (older providers).
    Sha1,
    /// HMAC-SHA512.
    Sha512,
}

/// How a MAC is written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// Lower- or upper-case hex.
    #[default]
    Hex,
    /// Standard base64.
    Base64,
}

fn mac(algorithm: Algorithm, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    fn run<M: Mac + KeyInit>(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        let mut mac = <M as KeyInit>::new_from_slice(key).expect("HMAC takes keys of any length");
        for part in parts {
            mac.update(part);
        }
        mac.finalize().into_bytes().to_vec()
    }
    match algorithm {
        Algorithm::Sha256 => run::<Hmac<Sha256>>(key, parts),
        Algorithm::Sha1 => run::<Hmac<Sha1>>(key, parts),
        Algorithm::Sha512 => run::<Hmac<Sha512>>(key, parts),
    }
}

impl HmacScheme {
    pub(super) fn verify(
        &self,
        secrets: &[Secret],
        request: &Signed<'_>,
    ) -> Result<(), VerifyError> {
        let lookup = |name: &str| {
            request
                .headers
                .get(&name.to_ascii_lowercase())
                .map(String::as_str)
                .filter(|v| !v.is_empty())
        };
        let value =
            lookup(&self.header).ok_or(VerifyError::Missing("the configured signature header"))?;
        let encoded = value
            .trim()
            .strip_prefix(self.prefix.as_str())
            .ok_or(VerifyError::Malformed("the configured signature header"))?;
        let sent = match self.encoding {
            Encoding::Hex => hex::decode(encoded).ok(),
            Encoding::Base64 => BASE64.decode(encoded).ok(),
        }
        .ok_or(VerifyError::Malformed("the configured signature header"))?;
        let timestamp = match &self.timestamp_header {
            Some(name) => {
                let t =
                    lookup(name).ok_or(VerifyError::Missing("the configured timestamp header"))?;
                let secs: i64 = t
                    .trim()
                    .parse()
                    .map_err(|_| VerifyError::Malformed("the configured timestamp header"))?;
                fresh(secs, request.now_secs)?;
                Some(t.trim())
            }
            None => None,
        };
        let parts: Vec<&[u8]> = match timestamp {
            Some(t) => vec![t.as_bytes(), b".", request.body],
            None => vec![request.body],
        };
        let matched = secrets.iter().fold(false, |hit, secret| {
            super::ct_eq(
                &mac(self.algorithm, secret.expose().as_bytes(), &parts),
                &sent,
            ) | hit
        });
        if matched {
            Ok(())
        } else {
            Err(VerifyError::NoMatch("the configured signature header"))
        }
    }
}
