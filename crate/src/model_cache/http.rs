//! The HTTP side of the model cache: single-range requests checked against what was asked
//! (status, `Content-Range` start and length), validators, body reads under an idle timeout,
//! and which failures are transient (retried by the caller, resuming from the stored chunks).

use js_sys::{Promise, Reflect, Uint8Array};
use wasm_bindgen::JsCast;
use web_sys::{
    AbortSignal, ReadableStreamDefaultReader, Request, RequestCache, RequestInit, Response,
};

use super::error::{describe, CacheError};
use super::js;

/// Retries of a failed, cut or stalled request within one load.
pub(super) const MAX_RETRIES: u32 = 3;
/// Delay before the first retry; doubled for each further one.
pub(super) const RETRY_BASE_DELAY_MS: f64 = 500.0;

/// What one server response says about the bytes it carries, and its body.
pub(super) struct RangeResponse {
    reader: ReadableStreamDefaultReader,
    url: String,
    /// File offset of the body's first byte (0 for a 200, the range start for a 206).
    pub body_start: u64,
    /// The whole file's size, from `Content-Range` or a 200's `Content-Length`.
    pub file_size: Option<u64>,
    pub validator: Option<String>,
}

fn transient(message: String, status: Option<u16>) -> CacheError {
    CacheError::Transient { message, status }
}

fn failed(url: &str, message: String, status: Option<u16>) -> CacheError {
    CacheError::DownloadFailed {
        message,
        url: url.to_owned(),
        status,
    }
}

fn aborted_or(signal: Option<&AbortSignal>, error: &wasm_bindgen::JsValue) -> bool {
    signal.is_some_and(|s| s.aborted()) || js::is_dom_exception(error, "AbortError")
}

/// Requests bytes `start..` (to `end`, inclusive, when given) and checks what the server
/// declares. A 206 must start exactly at `start`; a server that ignores Range answers 200 with
/// the whole file, which is usable: the caller skips to `start`.
pub(super) async fn request_range(
    url: &str,
    start: u64,
    end: Option<u64>,
    signal: Option<&AbortSignal>,
) -> Result<RangeResponse, CacheError> {
    let init = RequestInit::new();
    // The bytes go to IndexedDB; a second copy in the HTTP cache would double the disk use.
    init.set_cache(RequestCache::NoStore);
    init.set_signal(signal);
    let request = Request::new_with_str_and_init(url, &init)
        .map_err(|e| CacheError::InvalidRequest(format!("{url}: {}", describe(&e))))?;
    let range = format!(
        "bytes={start}-{}",
        end.map(|e| e.to_string()).unwrap_or_default()
    );
    request
        .headers()
        .set("Range", &range)
        .map_err(CacheError::internal)?;
    let response: Response = match js::await_promise(js::fetch_request(&request)).await {
        Ok(r) => r.unchecked_into(),
        Err(e) if aborted_or(signal, &e) => return Err(CacheError::Aborted),
        Err(e) => {
            return Err(transient(
                format!("request for {url} failed: {}", describe(&e)),
                None,
            ))
        }
    };
    let status = response.status();
    let discard = |response: &Response| {
        if let Some(body) = response.body() {
            // Failing to cancel a body we do not want changes nothing.
            let _ = body.cancel();
        }
    };
    if status == 408 || status == 429 || status >= 500 {
        discard(&response);
        return Err(transient(format!("{url}: HTTP {status}"), Some(status)));
    }
    if status != 200 && status != 206 {
        discard(&response);
        let text = format!("{url}: HTTP {status} {}", response.status_text());
        return Err(failed(url, text.trim_end().to_owned(), Some(status)));
    }
    let headers = response.headers();
    let header = |name: &str| headers.get(name).ok().flatten();
    // With a Content-Encoding, Content-Length counts encoded bytes, not the file's.
    let encoded = header("Content-Encoding").is_some_and(|e| e != "identity");
    let content_length = if encoded {
        None
    } else {
        header("Content-Length").and_then(|v| v.parse::<u64>().ok())
    };
    let mut body_start = 0;
    let mut file_size = content_length;
    if status == 206 {
        let content_range = header("Content-Range").unwrap_or_default();
        let Some((first, last, size)) = parse_content_range(&content_range) else {
            discard(&response);
            return Err(failed(
                url,
                format!("{url}: a 206 response without a valid Content-Range ({content_range:?})"),
                Some(206),
            ));
        };
        if first != start || end.is_some_and(|end| last > end) {
            discard(&response);
            return Err(failed(
                url,
                format!("{url}: asked for bytes from {start}, the server sent {content_range}"),
                Some(206),
            ));
        }
        if content_length.is_some_and(|n| n != last - first + 1) {
            discard(&response);
            return Err(CacheError::Integrity {
                message: format!(
                    "{url}: Content-Length {} disagrees with Content-Range {content_range}",
                    content_length.unwrap_or_default()
                ),
                url: url.to_owned(),
            });
        }
        body_start = first;
        file_size = size;
    }
    let Some(body) = response.body() else {
        return Err(failed(
            url,
            format!("{url}: the response has no body"),
            Some(status),
        ));
    };
    let reader = body
        .get_reader()
        .dyn_into::<ReadableStreamDefaultReader>()
        .map_err(|e| CacheError::internal(e.into()))?;
    // A strong ETag (weak ones do not promise identical bytes), else Last-Modified.
    let validator = header("ETag")
        .filter(|e| !e.starts_with("W/"))
        .or_else(|| header("Last-Modified"));
    Ok(RangeResponse {
        reader,
        url: url.to_owned(),
        body_start,
        file_size,
        validator,
    })
}

/// `bytes FIRST-LAST/SIZE` (SIZE may be `*`): the first and last byte, and the file's size.
fn parse_content_range(value: &str) -> Option<(u64, u64, Option<u64>)> {
    let rest = value.strip_prefix("bytes ")?;
    let (span, size) = rest.split_once('/')?;
    let (first, last) = span.split_once('-')?;
    let digits = |s: &str| {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u64>().ok())
            .flatten()
    };
    let (first, last) = (digits(first)?, digits(last)?);
    let size = if size == "*" {
        None
    } else {
        Some(digits(size)?)
    };
    (first <= last).then_some((first, last, size))
}

impl RangeResponse {
    /// The next piece of the body (None at its end). A failing read (connection cut) and a
    /// server that sends nothing for `idle_timeout_ms` are transient.
    pub async fn next(
        &self,
        idle_timeout_ms: f64,
        signal: Option<&AbortSignal>,
    ) -> Result<Option<Uint8Array>, CacheError> {
        let read: Promise = self.reader.read();
        let result = match js::within(read, idle_timeout_ms).await {
            None => {
                return Err(transient(
                    format!(
                        "{}: the server sent nothing for {:.0} s",
                        self.url,
                        idle_timeout_ms / 1000.0
                    ),
                    None,
                ))
            }
            Some(Ok(result)) => result,
            Some(Err(e)) if aborted_or(signal, &e) => return Err(CacheError::Aborted),
            Some(Err(e)) => {
                return Err(transient(
                    format!(
                        "{}: the connection failed mid-body: {}",
                        self.url,
                        describe(&e)
                    ),
                    None,
                ))
            }
        };
        let done = Reflect::get(&result, &"done".into()).map_err(CacheError::internal)?;
        if done.as_bool() == Some(true) {
            return Ok(None);
        }
        let value = Reflect::get(&result, &"value".into()).map_err(CacheError::internal)?;
        value.dyn_into::<Uint8Array>().map(Some).map_err(|_| {
            CacheError::Internal(format!("{}: a body piece that is not bytes", self.url))
        })
    }
}

impl Drop for RangeResponse {
    /// Ends a body we no longer need; a body that already failed has nothing to end.
    fn drop(&mut self) {
        let _ = self.reader.cancel();
    }
}
