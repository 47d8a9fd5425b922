//! What can go wrong getting a model's bytes ([`CacheError`]), each with the npm package's
//! error code and the fields its error classes carry.

use wasm_bindgen::JsValue;

/// Why a model's bytes could not be had.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CacheError {
    #[error("model loading was aborted")]
    Aborted,
    /// An HTTP error, or the network failing beyond the retries.
    #[error("{message}")]
    DownloadFailed {
        message: String,
        url: String,
        status: Option<u16>,
    },
    /// A failure worth retrying: no response, a cut or stalled body, or a 408/429/5xx status.
    /// Never leaves the module: past the retries it becomes [`CacheError::DownloadFailed`].
    #[error("{message}")]
    Transient {
        message: String,
        status: Option<u16>,
    },
    /// Bytes that are not the expected ones (size or SHA-256); the entry was deleted.
    #[error("{message}")]
    Integrity { message: String, url: String },
    /// The origin's storage cannot hold the model; nothing of it is left stored.
    #[error("{message}")]
    QuotaExceeded {
        message: String,
        needed_bytes: u64,
        free_bytes: Option<u64>,
    },
    #[error("{0}")]
    InvalidRequest(String),
    #[error("{0}")]
    BadModel(String),
    #[error("{0}")]
    Internal(String),
}

impl CacheError {
    /// The npm package's error code (its error classes are chosen by it).
    pub fn code(&self) -> &'static str {
        match self {
            CacheError::Aborted => "aborted",
            CacheError::DownloadFailed { .. } | CacheError::Transient { .. } => "download-failed",
            CacheError::Integrity { .. } => "integrity",
            CacheError::QuotaExceeded { .. } => "quota-exceeded",
            CacheError::InvalidRequest(_) => "invalid-request",
            CacheError::BadModel(_) => "bad-model",
            CacheError::Internal(_) => "internal",
        }
    }

    /// A browser API that failed where it should not (its exception, as text).
    pub(crate) fn internal(error: JsValue) -> CacheError {
        CacheError::Internal(describe(&error))
    }

    /// A JS `Error` with this error's message, `code` and the fields the npm package's error
    /// classes carry (`url`, `status`, `neededBytes`, `freeBytes`).
    pub fn to_js(&self) -> JsValue {
        let error: JsValue = js_sys::Error::new(&self.to_string()).into();
        let set = |name: &str, value: JsValue| {
            // Setting a property on a fresh Error object cannot fail.
            let _ = js_sys::Reflect::set(&error, &name.into(), &value);
        };
        let number = |n: Option<u64>| n.map_or(JsValue::NULL, |n| JsValue::from(n as f64));
        set("code", self.code().into());
        match self {
            CacheError::DownloadFailed { url, status, .. } => {
                set("url", url.into());
                set("status", number(status.map(u64::from)));
            }
            CacheError::Transient { status, .. } => set("status", number(status.map(u64::from))),
            CacheError::Integrity { url, .. } => set("url", url.into()),
            CacheError::QuotaExceeded {
                needed_bytes,
                free_bytes,
                ..
            } => {
                set("neededBytes", number(Some(*needed_bytes)));
                set("freeBytes", number(*free_bytes));
            }
            _ => {}
        }
        error
    }
}

/// A thrown JS value as text: an Error's message, else its string form.
pub fn describe(error: &JsValue) -> String {
    if let Some(e) = wasm_bindgen::JsCast::dyn_ref::<js_sys::Error>(error) {
        return String::from(e.message());
    }
    error.as_string().unwrap_or_else(|| format!("{error:?}"))
}

/// `bytes` as MiB with one decimal, for messages.
pub(crate) fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}
