//! Shared tokens: `Authorization: Bearer <token>` (Alertmanager's
//! `bearer_token`, Grafana's contact points) and `Authorization: Basic
//! <base64 user:password>` (secrets hold `user:password`). Compared in
//! constant time; the scheme name in any case.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::{Secret, Signed, VerifyError, ct_eq};

fn credentials<'a>(request: &'a Signed<'_>, scheme: &str) -> Result<&'a str, VerifyError> {
    let header = request.header("authorization")?;
    match header.trim().split_once(' ') {
        Some((name, value)) if name.eq_ignore_ascii_case(scheme) => Ok(value.trim()),
        _ => Err(VerifyError::Malformed("authorization")),
    }
}

fn any_matches(secrets: &[Secret], presented: &[u8]) -> Result<(), VerifyError> {
    // Every secret is compared, so the time taken says nothing of which matched.
    let matched = secrets.iter().fold(false, |hit, s| {
        ct_eq(s.expose().as_bytes(), presented) | hit
    });
    if matched {
        Ok(())
    } else {
        Err(VerifyError::NoMatch("authorization"))
    }
}

pub(super) fn bearer(secrets: &[Secret], request: &Signed<'_>) -> Result<(), VerifyError> {
    any_matches(secrets, credentials(request, "bearer")?.as_bytes())
}

pub(super) fn basic(secrets: &[Secret], request: &Signed<'_>) -> Result<(), VerifyError> {
    let decoded = BASE64
        .decode(credentials(request, "basic")?)
        .map_err(|_| VerifyError::Malformed("authorization"))?;
    any_matches(secrets, &decoded)
}
