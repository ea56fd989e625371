//! Reading JavaScript arguments: type checks that name the field at fault.
//!
//! A type error says which field and which JS type it got, never the value:
//! the same helpers read the app secret, and a message must not leak it.

use js_sys::{ArrayBuffer, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use yunxin_edge::{Credentials, Error};

use crate::error::{JsResult, js_error};

/// A required string.
pub fn string(value: &JsValue, field: &str) -> JsResult<String> {
    value
        .as_string()
        .ok_or_else(|| wrong_type(field, "must be a string", value))
}

/// `CurTime` as text: the decimal string itself, or a whole number of seconds.
pub fn cur_time_text(value: &JsValue, field: &str) -> JsResult<String> {
    if let Some(text) = value.as_string() {
        return Ok(text);
    }
    match safe_integer(value) {
        Some(seconds) => Ok(seconds.to_string()),
        None => Err(wrong_type(
            field,
            "must be a decimal string or a non-negative whole number",
            value,
        )),
    }
}

/// Bytes from a string (UTF-8), an `ArrayBuffer` or a `Uint8Array`.
///
/// The wrapper hands over either text or a fresh `Uint8Array` it made itself
/// from whatever binary data the caller gave, so that reading it here cannot
/// run the caller's code (a Proxy's traps, a subclass's getters).
pub fn bytes(value: &JsValue, field: &str) -> JsResult<Vec<u8>> {
    if let Some(text) = value.as_string() {
        Ok(text.into_bytes())
    } else if let Some(bytes) = value.dyn_ref::<Uint8Array>() {
        Ok(bytes.to_vec())
    } else if let Some(buffer) = value.dyn_ref::<ArrayBuffer>() {
        Ok(Uint8Array::new(buffer).to_vec())
    } else {
        Err(wrong_type(
            field,
            "must be a string, an ArrayBuffer or a Uint8Array",
            value,
        ))
    }
}

/// An HTTP status code as `fetch` reports it (0 for an opaque answer).
pub fn http_status(value: &JsValue, field: &str) -> JsResult<u16> {
    safe_integer(value)
        .filter(|status| *status <= 999)
        .map(|status| status as u16)
        .ok_or_else(|| wrong_type(field, "must be an HTTP status code", value))
}

/// An optional whole number of at least 0 (`undefined` and `null`: `None`).
pub fn optional_whole(value: &JsValue, field: &str) -> JsResult<Option<u64>> {
    if value.is_undefined() || value.is_null() {
        return Ok(None);
    }
    safe_integer(value)
        .map(Some)
        .ok_or_else(|| wrong_type(field, "must be a non-negative whole number", value))
}

/// An optional point in time given as a number of milliseconds since 1970
/// (`undefined` and `null`: `None`). Only a number: the methods of a
/// delivery read nothing that could run the caller's code.
pub fn optional_millis(value: &JsValue, field: &str) -> JsResult<Option<u64>> {
    if value.is_undefined() || value.is_null() {
        return Ok(None);
    }
    value
        .as_f64()
        .and_then(non_negative_whole)
        .map(Some)
        .ok_or_else(|| {
            wrong_type(
                field,
                "must be milliseconds since 1970 (a non-negative number)",
                value,
            )
        })
}

/// `{ appKey, appSecret }`, both non-empty strings.
pub fn credentials(value: &JsValue) -> JsResult<Credentials> {
    let object = Fields::object(value.clone(), "credentials")?;
    let app_key = object.required_string("appKey")?;
    let app_secret = object.required_string("appSecret")?;
    Credentials::try_new(app_key, app_secret).map_err(|e| js_error(&e))
}

/// An object of named settings, read one field at a time.
pub struct Fields {
    value: JsValue,
    /// Prefix of the field names in errors (`request.url`); `None` for an
    /// options bag, whose fields are named alone (`baseUrl`).
    prefix: Option<String>,
}

impl Fields {
    /// An optional options bag: `undefined` and `null` read as `{}`.
    pub fn options(value: JsValue) -> JsResult<Self> {
        if value.is_undefined() || value.is_null() {
            return Ok(Fields {
                value: JsValue::UNDEFINED,
                prefix: None,
            });
        }
        require_object(&value, "options")?;
        Ok(Fields {
            value,
            prefix: None,
        })
    }

    /// A required object, called `name` in errors.
    pub fn object(value: JsValue, name: &str) -> JsResult<Self> {
        if value.is_undefined() || value.is_null() {
            return Err(js_error(&Error::Missing {
                field: name.to_owned().into(),
            }));
        }
        require_object(&value, name)?;
        Ok(Fields {
            value,
            prefix: Some(name.to_owned()),
        })
    }

    /// An optional string.
    pub fn string(&self, key: &str) -> JsResult<Option<String>> {
        let value = self.get(key);
        if value.is_undefined() || value.is_null() {
            return Ok(None);
        }
        string(&value, &self.field(key)).map(Some)
    }

    /// An optional string that, when given, may not be empty.
    pub fn non_empty_string(&self, key: &str) -> JsResult<Option<String>> {
        match self.string(key)? {
            Some(text) if text.is_empty() => Err(self.missing(key)),
            other => Ok(other),
        }
    }

    /// A required, non-empty string.
    pub fn required_string(&self, key: &str) -> JsResult<String> {
        self.non_empty_string(key)?.ok_or_else(|| self.missing(key))
    }

    /// An optional point in time as milliseconds: a number (like `Date.now()`)
    /// or a `Date`.
    pub fn millis(&self, key: &str) -> JsResult<Option<u64>> {
        let value = self.get(key);
        if value.is_undefined() || value.is_null() {
            return Ok(None);
        }
        let millis = value
            .as_f64()
            .or_else(|| date_millis(&value))
            .and_then(non_negative_whole);
        millis.map(Some).ok_or_else(|| {
            wrong_type(
                &self.field(key),
                "must be milliseconds since 1970 (a non-negative number) or a valid Date",
                &value,
            )
        })
    }

    /// An optional whole number of at least 1.
    pub fn positive_integer(&self, key: &str) -> JsResult<Option<usize>> {
        match self.non_negative_integer(key)? {
            Some(0) => Err(js_error(&Error::TooFew {
                field: self.field(key).into(),
                limit: 1,
                actual: 0,
            })),
            other => Ok(other.map(|n| n as usize)),
        }
    }

    /// An optional whole number of at least 0.
    pub fn non_negative_integer(&self, key: &str) -> JsResult<Option<u64>> {
        let value = self.get(key);
        if value.is_undefined() || value.is_null() {
            return Ok(None);
        }
        safe_integer(&value).map(Some).ok_or_else(|| {
            wrong_type(
                &self.field(key),
                "must be a non-negative whole number",
                &value,
            )
        })
    }

    /// An optional whole number that fits in a `u32`.
    pub fn small_integer(&self, key: &str) -> JsResult<Option<u32>> {
        let value = self.get(key);
        if value.is_undefined() || value.is_null() {
            return Ok(None);
        }
        safe_integer(&value)
            .and_then(|n| u32::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| {
                wrong_type(
                    &self.field(key),
                    "must be a whole number from 0 to 4294967295",
                    &value,
                )
            })
    }

    fn get(&self, key: &str) -> JsValue {
        if self.value.is_undefined() {
            return JsValue::UNDEFINED;
        }
        // A throwing getter or Proxy trap reads as "absent" rather than escaping
        // as a foreign exception.
        Reflect::get(&self.value, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
    }

    fn field(&self, key: &str) -> String {
        match &self.prefix {
            Some(prefix) => format!("{prefix}.{key}"),
            None => key.to_owned(),
        }
    }

    fn missing(&self, key: &str) -> JsValue {
        js_error(&Error::Missing {
            field: self.field(key).into(),
        })
    }
}

fn require_object(value: &JsValue, name: &str) -> JsResult<()> {
    if value.is_object() && !value.is_array() {
        Ok(())
    } else {
        Err(wrong_type(name, "must be an object", value))
    }
}

/// The time of a genuine `Date`, by applying the built-in
/// `Date.prototype.getTime` inside `Reflect.apply`: calling `getTime` on the
/// value itself would run whatever a subclass or a Proxy put there, and an
/// exception would unwind through this module. `None` for anything else.
fn date_millis(value: &JsValue) -> Option<f64> {
    let get = |target: &JsValue, key: &str| Reflect::get(target, &JsValue::from_str(key)).ok();
    let date_class = get(&js_sys::global(), "Date")?;
    let get_time = get(&get(&date_class, "prototype")?, "getTime")?;
    let get_time = get_time.dyn_into::<js_sys::Function>().ok()?;
    Reflect::apply(&get_time, value, &js_sys::Array::new())
        .ok()?
        .as_f64()
}

/// A JS number that is a whole number in `0..=Number.MAX_SAFE_INTEGER`.
fn safe_integer(value: &JsValue) -> Option<u64> {
    value
        .as_f64()
        .filter(|_| js_sys::Number::is_safe_integer(value))
        .and_then(|n| if n >= 0.0 { Some(n as u64) } else { None })
}

fn non_negative_whole(n: f64) -> Option<u64> {
    // 2^53: beyond it milliseconds are no longer exact, and no clock gets there.
    (n.is_finite() && (0.0..9_007_199_254_740_992.0).contains(&n)).then(|| n.floor() as u64)
}

/// An `invalid` error naming the JS type that was given, never the value.
fn wrong_type(field: &str, reason: &'static str, value: &JsValue) -> JsValue {
    js_error(&Error::Invalid {
        field: field.to_owned().into(),
        reason,
        value: type_name(value),
    })
}

/// The JS type of a value, as a reader would name it.
pub fn type_name(value: &JsValue) -> String {
    if value.is_null() {
        "null".to_owned()
    } else if value.is_array() {
        "array".to_owned()
    } else {
        value.js_typeof().as_string().unwrap_or_default()
    }
}
