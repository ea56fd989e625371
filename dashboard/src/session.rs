//! Sign-in: the session cookie and the forms' CSRF tokens, both HMAC-SHA256
//! under a key derived from `STATUS_TOKEN`, and the limit on wrong tokens.
//!
//! A session is a cookie the Worker signed, holding its own expiry and a
//! random id. A cookie signed under another secret (another deployment, or
//! a token since rotated) fails the MAC and is refused, so rotating
//! `STATUS_TOKEN` signs everybody out. What a signature cannot say, that a
//! session was ended before its expiry, the Worker keeps in storage: the
//! ids signed out, and when everybody was last signed out
//! ([`Session::issued_ms`] against it). A CSRF token is the MAC of the
//! session id and what the form does (`retry:<event id>`, `logout`): it
//! cannot be replayed from another session, nor against another event.
//!
//! [`SignInAttempts`] decides how many wrong tokens a client may try.

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "yx_ops_session";

/// How long a sign-in lasts: a working day.
pub const SESSION_TTL_MS: u64 = 8 * 60 * 60 * 1000;

/// Labels the derived key: a MAC under `STATUS_TOKEN` itself, or under a
/// key derived for something else, never passes as one of ours.
const KEY_LABEL: &[u8] = b"yunxin-edge-ops session key v1";

/// Random bytes in a session id.
pub const SESSION_ID_BYTES: usize = 16;

/// The Worker's signing key, derived from `STATUS_TOKEN`.
#[derive(Clone)]
pub struct Keys {
    key: [u8; 32],
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys(<redacted>)")
    }
}

/// A signed-in browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Random, hex: what CSRF tokens are bound to.
    pub id: String,
    /// When the cookie stops being accepted (UNIX ms).
    pub expires_ms: u64,
}

impl Session {
    /// When it was signed in (UNIX ms): every session lasts [`SESSION_TTL_MS`].
    pub fn issued_ms(&self) -> u64 {
        self.expires_ms.saturating_sub(SESSION_TTL_MS)
    }
}

/// Wrong tokens a client may present within [`SIGN_IN_WINDOW_MS`]; past
/// them it is refused, right token or wrong, until the window ends.
pub const MAX_FAILED_SIGN_INS: u32 = 5;
/// The window of [`MAX_FAILED_SIGN_INS`]: a quarter of an hour.
pub const SIGN_IN_WINDOW_MS: u64 = 15 * 60 * 1000;

/// One client's recent wrong tokens: the decision of the sign-in limit,
/// kept by the Worker per client between requests.
///
/// ```
/// use yunxin_edge_dashboard::session::{SignIn, SignInAttempts, MAX_FAILED_SIGN_INS};
///
/// let mut client = SignInAttempts::default();
/// for _ in 0..MAX_FAILED_SIGN_INS {
///     assert_eq!(client.attempt(false, 1_000), SignIn::Refused);
/// }
/// // Locked out: even the right token is refused, with the time to wait.
/// assert!(matches!(client.attempt(true, 2_000), SignIn::Limited { .. }));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SignInAttempts {
    /// Wrong tokens since the window began.
    pub failures: u32,
    /// When the window began (UNIX ms).
    pub window_start_ms: u64,
}

/// What becomes of one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignIn {
    /// The right token, and the client is not limited: sign in.
    Allowed,
    /// A wrong token, counted.
    Refused,
    /// Too many wrong tokens: refused whatever was presented, for this
    /// long (ms).
    Limited {
        /// Until the window ends.
        retry_after_ms: u64,
    },
}

impl SignInAttempts {
    /// Decides an attempt at `now_ms` with a token that was right or not,
    /// and counts it.
    pub fn attempt(&mut self, token_ok: bool, now_ms: u64) -> SignIn {
        // The window begins with a client's first wrong token; one over, or
        // a clock gone back, starts afresh.
        let window_end = self.window_start_ms.saturating_add(SIGN_IN_WINDOW_MS);
        if now_ms >= window_end || now_ms < self.window_start_ms {
            *self = SignInAttempts::default();
        }
        if self.failures >= MAX_FAILED_SIGN_INS {
            return SignIn::Limited {
                retry_after_ms: window_end - now_ms,
            };
        }
        if token_ok {
            *self = SignInAttempts::default();
            return SignIn::Allowed;
        }
        if self.failures == 0 {
            self.window_start_ms = now_ms;
        }
        self.failures += 1;
        SignIn::Refused
    }
}

impl Keys {
    /// The key for `status_token`.
    pub fn derive(status_token: &str) -> Keys {
        let mut mac = HmacSha256::new_from_slice(status_token.as_bytes())
            .expect("HMAC takes a key of any length");
        mac.update(KEY_LABEL);
        Keys {
            key: mac.finalize().into_bytes().into(),
        }
    }

    fn mac(&self, parts: &[&[u8]]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("a 32-byte key");
        // Each part is length-prefixed so that no two lists of parts sign
        // the same bytes ("a"+"bc" vs "ab"+"c").
        for part in parts {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac
    }

    /// A new session from `random` bytes, valid for [`SESSION_TTL_MS`]
    /// from `now_ms`, and its cookie value.
    pub fn issue(&self, random: [u8; SESSION_ID_BYTES], now_ms: u64) -> (Session, String) {
        let session = Session {
            id: hex::encode(random),
            expires_ms: now_ms.saturating_add(SESSION_TTL_MS),
        };
        let value = self.cookie_value(&session);
        (session, value)
    }

    fn cookie_value(&self, session: &Session) -> String {
        let signed = format!("v1.{}.{}", session.expires_ms, session.id);
        let tag = self.mac(&[b"session", signed.as_bytes()]).finalize();
        format!("{signed}.{}", hex::encode(tag.into_bytes()))
    }

    /// The session in a cookie value, if this Worker signed it and it has
    /// not expired at `now_ms`.
    pub fn verify(&self, value: &str, now_ms: u64) -> Option<Session> {
        let (signed, tag) = value.rsplit_once('.')?;
        let tag = hex::decode(tag).ok()?;
        self.mac(&[b"session", signed.as_bytes()])
            .verify_slice(&tag)
            .ok()?;
        let mut parts = signed.split('.');
        let (Some("v1"), Some(expires), Some(id), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        let expires_ms: u64 = expires.parse().ok()?;
        // An expiry further away than a fresh session's cannot be ours.
        if expires_ms <= now_ms || expires_ms > now_ms.saturating_add(SESSION_TTL_MS) {
            return None;
        }
        Some(Session {
            id: id.to_owned(),
            expires_ms,
        })
    }

    /// The CSRF token of a form doing `purpose` in `session`.
    pub fn csrf(&self, session: &Session, purpose: &str) -> String {
        let tag = self
            .mac(&[b"csrf", session.id.as_bytes(), purpose.as_bytes()])
            .finalize();
        hex::encode(tag.into_bytes())
    }

    /// Whether `presented` is the CSRF token of `purpose` in `session`
    /// (compared in constant time).
    pub fn check_csrf(&self, session: &Session, purpose: &str, presented: &str) -> bool {
        let Ok(tag) = hex::decode(presented) else {
            return false;
        };
        self.mac(&[b"csrf", session.id.as_bytes(), purpose.as_bytes()])
            .verify_slice(&tag)
            .is_ok()
    }
}

/// Whether `presented` is `expected`, in time independent of both: their
/// SHA-256 digests are compared, so neither the content nor the length of
/// the secret shows in how long a wrong guess takes.
pub fn token_matches(expected: &str, presented: &str) -> bool {
    let expected = Sha256::digest(expected.as_bytes());
    let presented = Sha256::digest(presented.as_bytes());
    expected.as_slice().ct_eq(presented.as_slice()).into()
}

/// The `Set-Cookie` value that signs a browser in.
pub fn set_cookie(value: &str) -> String {
    format!(
        "{SESSION_COOKIE}={value}; Max-Age={}; Path=/dashboard; HttpOnly; Secure; SameSite=Strict",
        SESSION_TTL_MS / 1000
    )
}

/// The `Set-Cookie` value that signs a browser out.
pub fn clear_cookie() -> String {
    format!("{SESSION_COOKIE}=; Max-Age=0; Path=/dashboard; HttpOnly; Secure; SameSite=Strict")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_tokens_lock_a_client_out_for_the_rest_of_the_window() {
        let mut client = SignInAttempts::default();
        let start = 10_000;
        // A right token resets the count.
        assert_eq!(client.attempt(false, start), SignIn::Refused);
        assert_eq!(client.attempt(true, start + 1), SignIn::Allowed);
        assert_eq!(client, SignInAttempts::default());
        for i in 0..MAX_FAILED_SIGN_INS {
            assert_eq!(
                client.attempt(false, start + 10 + u64::from(i)),
                SignIn::Refused
            );
        }
        // Then everything is refused until the window that began with the
        // first of them ends, and says how long that is.
        let later = start + 10 + 60_000;
        assert_eq!(
            client.attempt(true, later),
            SignIn::Limited {
                retry_after_ms: SIGN_IN_WINDOW_MS - 60_000
            }
        );
        assert!(matches!(
            client.attempt(false, later),
            SignIn::Limited { .. }
        ));
        // After it, a right token signs in.
        let after = start + 10 + SIGN_IN_WINDOW_MS;
        assert_eq!(client.attempt(true, after), SignIn::Allowed);
        // A clock that went back starts a new window rather than locking forever.
        let mut skewed = SignInAttempts {
            failures: MAX_FAILED_SIGN_INS,
            window_start_ms: after,
        };
        assert_eq!(skewed.attempt(true, start), SignIn::Allowed);
    }

    #[test]
    fn a_session_was_issued_a_lifetime_before_it_expires() {
        let keys = Keys::derive("t");
        let (session, _) = keys.issue([7; SESSION_ID_BYTES], 5_000);
        assert_eq!(session.issued_ms(), 5_000);
    }

    const NOW: u64 = 1_796_000_000_000;

    #[test]
    fn a_cookie_verifies_under_its_own_secret_only() {
        let keys = Keys::derive("the-status-token");
        let (session, cookie) = keys.issue([7; 16], NOW);
        assert_eq!(keys.verify(&cookie, NOW + 1), Some(session.clone()));
        assert_eq!(session.expires_ms, NOW + SESSION_TTL_MS);
        assert_eq!(session.id, "07".repeat(16));

        let other = Keys::derive("another-status-token");
        assert_eq!(other.verify(&cookie, NOW + 1), None);
        // The same expiry and id, signed by the other key, is not ours either.
        let (_, forged) = other.issue([7; 16], NOW);
        assert_eq!(keys.verify(&forged, NOW + 1), None);
    }

    #[test]
    fn a_cookie_expires() {
        let keys = Keys::derive("t");
        let (_, cookie) = keys.issue([1; 16], NOW);
        assert!(keys.verify(&cookie, NOW + SESSION_TTL_MS - 1).is_some());
        assert_eq!(keys.verify(&cookie, NOW + SESSION_TTL_MS), None);
        // A clock far behind the issue time sees an expiry too far away.
        assert_eq!(keys.verify(&cookie, NOW - 60_000), None);
    }

    #[test]
    fn a_tampered_cookie_is_refused() {
        let keys = Keys::derive("t");
        let (_, cookie) = keys.issue([1; 16], NOW);
        let later = cookie.replacen(
            &format!("v1.{}", NOW + SESSION_TTL_MS),
            &format!("v1.{}", NOW + SESSION_TTL_MS + 1),
            1,
        );
        assert_ne!(later, cookie);
        assert_eq!(keys.verify(&later, NOW), None);
        for bad in [
            "",
            ".",
            "v1",
            "v1.1.2",
            "v1.x.y.zz",
            &cookie[..cookie.len() - 2],
        ] {
            assert_eq!(keys.verify(bad, NOW), None, "{bad:?}");
        }
        let mut flipped = cookie.clone().into_bytes();
        let last = flipped.len() - 1;
        flipped[last] = if flipped[last] == b'0' { b'1' } else { b'0' };
        assert_eq!(keys.verify(&String::from_utf8(flipped).unwrap(), NOW), None);
    }

    #[test]
    fn csrf_tokens_are_bound_to_session_and_purpose() {
        let keys = Keys::derive("t");
        let (a, _) = keys.issue([1; 16], NOW);
        let (b, _) = keys.issue([2; 16], NOW);
        let token = keys.csrf(&a, "retry:evt_1");
        assert!(keys.check_csrf(&a, "retry:evt_1", &token));
        assert!(
            !keys.check_csrf(&b, "retry:evt_1", &token),
            "another session"
        );
        assert!(!keys.check_csrf(&a, "retry:evt_2", &token), "another event");
        assert!(!keys.check_csrf(&a, "retry:evt_1", ""), "missing");
        assert!(!keys.check_csrf(&a, "retry:evt_1", "zz"), "not hex");
        assert!(
            !keys.check_csrf(&a, "retry:evt_1", &token[..62]),
            "cut short"
        );
        let other = Keys::derive("u");
        assert!(!keys.check_csrf(&a, "retry:evt_1", &other.csrf(&a, "retry:evt_1")));
    }

    #[test]
    fn tokens_compare_by_content() {
        assert!(token_matches("secret", "secret"));
        assert!(!token_matches("secret", "secreT"));
        assert!(!token_matches("secret", "secret "));
        assert!(!token_matches("secret", ""));
    }

    #[test]
    fn cookies_are_http_only_secure_strict_and_scoped_to_the_dashboard() {
        let set = set_cookie("v");
        for part in [
            "yx_ops_session=v",
            "HttpOnly",
            "Secure",
            "SameSite=Strict",
            "Path=/dashboard",
            "Max-Age=28800",
        ] {
            assert!(set.split("; ").any(|p| p == part), "{part} in {set}");
        }
        assert!(clear_cookie().contains("Max-Age=0"));
    }

    #[test]
    fn keys_do_not_show_in_debug() {
        assert_eq!(format!("{:?}", Keys::derive("t")), "Keys(<redacted>)");
    }
}
