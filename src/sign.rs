//! Signing of Yunxin server API calls.
//!
//! Every call carries `AppKey`, `Nonce`, `CurTime` (UNIX seconds) and
//! `CheckSum = lowercase hex SHA1(AppSecret + Nonce + CurTime)`, plus an
//! optional `X-custom-traceid` by which Yunxin de-duplicates retries.
//! A CheckSum is valid for five minutes, so a retry is signed anew while it
//! keeps its trace id.

use std::fmt;

use sha1::{Digest, Sha1};
use sha2::Sha256;

use crate::error::{Error, Result};

/// Longest nonce Yunxin accepts, in characters.
pub const MAX_NONCE_CHARS: usize = 128;
/// Longest trace id accepted from a caller, in characters.
pub const MAX_TRACE_ID_CHARS: usize = 256;

/// Checks a value that goes into a request header as it is: present, and
/// with no control character (CR, LF and NUL above all: they would end the
/// header and start another of the sender's choosing).
fn header_value(field: &'static str, value: &str) -> Result<()> {
    if value.is_empty() {
        return Err(Error::Missing {
            field: field.into(),
        });
    }
    if value.chars().any(char::is_control) {
        return Err(Error::Invalid {
            field: field.into(),
            reason: "a header value may not contain control characters (CR, LF, NUL…)",
            value: value.escape_debug().to_string(),
        });
    }
    Ok(())
}

/// The app key from the Yunxin console. Not a secret.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AppKey(String);

impl AppKey {
    /// Wraps an app key.
    pub fn new(key: impl Into<String>) -> Self {
        AppKey(key.into())
    }

    /// The key as sent in the `AppKey` header.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The app secret from the Yunxin console.
///
/// Its `Debug` output is redacted and it has no `Display`, so it cannot end up
/// in a log line or an error message by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct AppSecret(String);

impl AppSecret {
    /// Wraps an app secret.
    pub fn new(secret: impl Into<String>) -> Self {
        AppSecret(secret.into())
    }

    /// The secret itself. Call this only to compute a checksum.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AppSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AppSecret(<redacted>)")
    }
}

/// An app's key and secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The app key.
    pub app_key: AppKey,
    /// The app secret.
    pub app_secret: AppSecret,
}

impl Credentials {
    /// Credentials from a key and a secret.
    pub fn new(app_key: impl Into<String>, app_secret: impl Into<String>) -> Self {
        Credentials {
            app_key: AppKey::new(app_key),
            app_secret: AppSecret::new(app_secret),
        }
    }

    /// Credentials from a key and a secret given by someone else (a
    /// configuration, a caller): the key goes into a header, so it must be
    /// non-empty with no control character (a CR or LF would start a header
    /// of the caller's choosing).
    pub fn try_new(app_key: impl Into<String>, app_secret: impl Into<String>) -> Result<Self> {
        let credentials = Credentials::new(app_key, app_secret);
        header_value("AppKey", credentials.app_key.as_str())?;
        Ok(credentials)
    }

    /// Signs with the current time and a fresh random nonce; fails only if
    /// the platform's random source does.
    pub fn sign(&self) -> Result<SignedHeaders> {
        Ok(self.sign_at(CurTime::now(), Nonce::random()?))
    }

    /// Signs with the given time and nonce (deterministic, for tests and replays).
    pub fn sign_at(&self, cur_time: CurTime, nonce: Nonce) -> SignedHeaders {
        let cur_time = cur_time.to_string();
        let checksum = checksum(&self.app_secret, nonce.as_str(), &cur_time);
        SignedHeaders {
            app_key: self.app_key.clone(),
            nonce,
            cur_time,
            checksum,
        }
    }
}

/// `lowercase hex SHA1(AppSecret + Nonce + CurTime)`, as Yunxin computes it.
///
/// ```
/// use yunxin_edge::{checksum, AppSecret};
/// let sum = checksum(&AppSecret::new("secret"), "abc", "1443592222");
/// assert_eq!(sum, "6461e65304e590d2268093aa1d290482274995b9");
/// ```
pub fn checksum(app_secret: &AppSecret, nonce: &str, cur_time: &str) -> String {
    let mut sha = Sha1::new();
    sha.update(app_secret.expose().as_bytes());
    sha.update(nonce.as_bytes());
    sha.update(cur_time.as_bytes());
    let mut hex = [0u8; 40];
    hex::encode_to_slice(sha.finalize(), &mut hex).expect("a SHA-1 digest is 20 bytes");
    String::from_utf8_lossy(&hex).into_owned()
}

/// A request nonce: at most 128 characters; random ones are 32 lowercase hex
/// characters, as the official SDKs send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nonce(String);

impl Nonce {
    /// 16 random bytes from the platform's CSPRNG, as 32 hex characters.
    pub fn random() -> Result<Self> {
        Ok(Nonce(hex::encode(random_bytes::<16>()?)))
    }

    /// `count` random nonces, as [`random`](Self::random) makes them, from
    /// one draw of the platform's CSPRNG: on wasm32 each draw is a call out
    /// to `crypto.getRandomValues`, which costs more than the rest of a
    /// nonce.
    pub fn random_many(count: usize) -> Result<Vec<Self>> {
        let mut bytes = vec![0u8; count * 16];
        fill_random(&mut bytes)?;
        Ok(bytes
            .chunks_exact(16)
            .map(|chunk| Nonce(hex::encode(chunk)))
            .collect())
    }

    /// A given nonce, checked against Yunxin's limit and as a header value.
    pub fn new(nonce: impl Into<String>) -> Result<Self> {
        let nonce = nonce.into();
        header_value("Nonce", &nonce)?;
        let len = nonce.chars().count();
        if len > MAX_NONCE_CHARS {
            return Err(Error::TooLong {
                field: "Nonce".into(),
                limit: MAX_NONCE_CHARS,
                actual: len,
            });
        }
        Ok(Nonce(nonce))
    }

    /// The nonce as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A point in time as UNIX seconds, the unit of the `CurTime` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct CurTime(pub u64);

impl CurTime {
    /// The current time from the platform's clock (`Date.now()` on wasm32,
    /// where `std::time::SystemTime` is unavailable).
    pub fn now() -> Self {
        CurTime(now_millis() / 1000)
    }
}

impl fmt::Display for CurTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Milliseconds since the UNIX epoch from the platform's clock.
#[cfg(not(target_arch = "wasm32"))]
pub fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Milliseconds since the UNIX epoch from the platform's clock.
#[cfg(target_arch = "wasm32")]
pub fn now_millis() -> u64 {
    js_sys::Date::now() as u64
}

/// The value of `X-custom-traceid`: Yunxin drops a call whose trace id it has
/// already seen, which makes a retry with the same trace id idempotent.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct TraceId(String);

impl TraceId {
    /// A random trace id, shaped like a UUID.
    pub fn random() -> Result<Self> {
        Ok(TraceId(uuid_shape(random_bytes::<16>()?)))
    }

    /// A trace id derived from an event id, a call index and a generation.
    ///
    /// The same event re-delivered to the relay produces the same trace ids,
    /// so Yunxin de-duplicates each call instead of notifying twice. The
    /// generation counts follow-up calls for receivers that failed retryably
    /// inside an otherwise answered call: such a follow-up carries other
    /// receivers, so it needs a trace id of its own. Generation 0 is the
    /// call as planned.
    ///
    /// ```
    /// use yunxin_edge::TraceId;
    /// let first = TraceId::derived("evt_1", 0, 0);
    /// assert_eq!(first, TraceId::derived("evt_1", 0, 0));
    /// assert_ne!(first, TraceId::derived("evt_1", 0, 1));
    /// ```
    pub fn derived(event_id: &str, call: usize, generation: u32) -> Self {
        let mut sha = Sha256::new();
        sha.update(b"yunxin-edge trace v1\0");
        sha.update(event_id.as_bytes());
        sha.update(b"\0");
        sha.update(call.to_string().as_bytes());
        if generation > 0 {
            sha.update(b"\0g");
            sha.update(generation.to_string().as_bytes());
        }
        let digest = sha.finalize();
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        TraceId(uuid_shape(bytes))
    }

    /// A trace id given by the caller: 1 to [`MAX_TRACE_ID_CHARS`]
    /// characters, none of them a control character (it is a header value).
    pub fn new(trace_id: impl Into<String>) -> Result<Self> {
        let trace_id = trace_id.into();
        header_value("X-custom-traceid", &trace_id)?;
        let len = trace_id.chars().count();
        if len > MAX_TRACE_ID_CHARS {
            return Err(Error::TooLong {
                field: "X-custom-traceid".into(),
                limit: MAX_TRACE_ID_CHARS,
                actual: len,
            });
        }
        Ok(TraceId(trace_id))
    }

    /// The trace id as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn uuid_shape(bytes: [u8; 16]) -> String {
    let h = hex::encode(bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Bytes from the platform's CSPRNG (`crypto.getRandomValues` on wasm32).
///
/// It can fail: some embedded runtimes lack it, and a Cloudflare Worker
/// refuses it at global scope. The caller gets [`Error::Random`] then.
pub(crate) fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut bytes = [0u8; N];
    fill_random(&mut bytes)?;
    Ok(bytes)
}

/// Fills `bytes` from the platform's CSPRNG (see [`random_bytes`]).
fn fill_random(bytes: &mut [u8]) -> Result<()> {
    getrandom::fill(bytes).map_err(|e| Error::Random {
        reason: e.to_string(),
    })
}

/// The authentication headers of one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    /// `AppKey`.
    pub app_key: AppKey,
    /// `Nonce`.
    pub nonce: Nonce,
    /// `CurTime`, UNIX seconds as decimal text.
    pub cur_time: String,
    /// `CheckSum`.
    pub checksum: String,
}

impl SignedHeaders {
    /// The headers as (name, value) pairs, in the order the reference lists them.
    pub fn pairs(&self) -> [(&'static str, &str); 4] {
        [
            ("AppKey", self.app_key.as_str()),
            ("Nonce", self.nonce.as_str()),
            ("CurTime", &self.cur_time),
            ("CheckSum", &self.checksum),
        ]
    }
}
