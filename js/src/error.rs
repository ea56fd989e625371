//! Errors as JavaScript sees them.
//!
//! Every failure becomes a JS `Error` named `YunxinError` whose `code`, `field`
//! and `limit` come from [`yunxin_edge::Error::code`], [`field`](yunxin_edge::Error::field)
//! and [`limit`](yunxin_edge::Error::limit). The package's wrapper re-creates
//! it as an instance of its exported `YunxinError` class so that `instanceof`
//! works; the raw export already throws something a caller can read.
//! Messages come from the core, which never puts a secret in one. A failing
//! random source is the core's [`Random`](yunxin_edge::Error::Random) error,
//! code `unsupported`, like any other.

use js_sys::Reflect;
use wasm_bindgen::JsValue;

/// What every export returns: the error side is always a [`js_error`].
pub type JsResult<T> = Result<T, JsValue>;

/// The JS error for a core error.
pub fn js_error(error: &yunxin_edge::Error) -> JsValue {
    build(
        &error.to_string(),
        error.code(),
        error.field(),
        error.limit(),
    )
}

fn build(message: &str, code: &str, field: Option<&str>, limit: Option<usize>) -> JsValue {
    let error = js_sys::Error::new(message);
    error.set_name("YunxinError");
    let error = JsValue::from(error);
    set(&error, "code", JsValue::from_str(code));
    set(
        &error,
        "field",
        field.map_or(JsValue::UNDEFINED, JsValue::from_str),
    );
    // Limits are small documented numbers (at most 4096), exact as f64.
    set(
        &error,
        "limit",
        limit.map_or(JsValue::UNDEFINED, |limit| JsValue::from_f64(limit as f64)),
    );
    error
}

fn set(target: &JsValue, key: &str, value: JsValue) {
    // Setting a property of a fresh, unfrozen Error cannot fail; if it ever
    // did, the error would still carry its message.
    let _ = Reflect::set(target, &JsValue::from_str(key), &value);
}
