use elasticsearch::http::StatusCode;

use crate::response::is_block;

/// What can go wrong talking to Elasticsearch.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid Elasticsearch URL {url:?}: {reason}")]
    Url { url: String, reason: String },
    #[error("cannot reach Elasticsearch: {}", with_causes(.0))]
    Transport(#[from] elasticsearch::Error),
    /// A request failed without a reason, and the node's TLS answer gave one (a refused client
    /// certificate: see `tls_answer`).
    #[error("cannot reach Elasticsearch: {}: the node's TLS answer: {answer}", with_causes(.error))]
    TlsRefused { error: elasticsearch::Error, answer: String },
    #[error("Elasticsearch answered {status} to {request}: {body}{}", login_hint(*status))]
    Status { request: &'static str, status: StatusCode, body: String },
    #[error("unreadable answer from Elasticsearch: {0}")]
    Response(#[from] serde_json::Error),
    #[error("bulk response has {got} items for {sent} sent")]
    ItemCount { sent: usize, got: usize },
    /// No AWS credentials could be had, or the request could not be signed.
    #[error("{0}")]
    Signing(#[from] drainpipe_aws_auth::Error),
}

/// A 401 or 403: Elasticsearch refuses drainpipe's credentials or their privileges.
pub(crate) fn is_refusal_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 401 | 403)
}

/// What a 401 means, to add to its answer: the proxy or cluster did not take the login.
pub fn login_hint(status: StatusCode) -> &'static str {
    if status == StatusCode::UNAUTHORIZED {
        " (the credentials were refused: check the user and password in the URL, or the API key)"
    } else {
        ""
    }
}

impl Error {
    /// A 401 or 403 answer (see [`is_refusal_status`]), but not a cluster block's 403: that is
    /// the cluster's state, not drainpipe's credentials.
    pub fn is_refusal(&self) -> bool {
        matches!(self, Error::Status { status, body, .. } if is_refusal_status(*status) && !is_block(body.as_bytes()))
    }

    /// Whether trying the same request again later can succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Url { .. } => false,
            // Credentials come from endpoints that can fail for a moment (STS, IMDS).
            Error::Transport(_)
            | Error::TlsRefused { .. }
            | Error::Response(_)
            | Error::ItemCount { .. }
            | Error::Signing(_) => true,
            Error::Status { status, .. } => {
                status.as_u16() == 429 || status.is_server_error() || matches!(status.as_u16(), 401 | 403 | 408)
            }
        }
    }
}

/// An error and its causes, `a: b: c`: the cause is where the answer is ("received fatal
/// alert: CertificateRequired", "Connection refused"), under "error sending request".
pub(crate) fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
