//! The errors the simulated SSM API answers with, in AWS's shape: the `__type` names
//! ([`kind`]) and [`ApiError`]. The bottom of the simulator's module graph: the instance
//! definitions, the session documents, the registry and the HTTP layer all speak it, and it
//! depends on none of them.

/// AWS error names (`__type`) the simulator answers with, in one place.
#[rustfmt::skip]
pub mod kind {
    pub const VALIDATION:             &str = "ValidationException";
    pub const SERIALIZATION:          &str = "SerializationException";
    pub const UNKNOWN_OPERATION:      &str = "UnknownOperationException";
    pub const MISSING_AUTH_TOKEN:     &str = "MissingAuthenticationTokenException";
    pub const INCOMPLETE_SIGNATURE:   &str = "IncompleteSignatureException";
    // Credential checks of `sim --credential-lifetime` (sim::credentials).
    pub const EXPIRED_TOKEN:          &str = "ExpiredTokenException";
    pub const UNRECOGNIZED_CLIENT:    &str = "UnrecognizedClientException";
    pub const INVALID_SIGNATURE:      &str = "InvalidSignatureException";
    pub const INVALID_DOCUMENT:       &str = "InvalidDocument";
    pub const INVALID_PARAMETERS:     &str = "InvalidParameters";
    pub const TARGET_NOT_CONNECTED:   &str = "TargetNotConnected";
    pub const DOES_NOT_EXIST:         &str = "DoesNotExistException";
    pub const INVALID_FILTER_KEY:     &str = "InvalidFilterKey";
    pub const INVALID_FILTER_VALUE:   &str = "InvalidInstanceInformationFilterValue";
    pub const INVALID_INSTANCE_ID:    &str = "InvalidInstanceId";
    pub const INVALID_NEXT_TOKEN:     &str = "InvalidNextToken";
    pub const QUOTA_EXCEEDED:         &str = "ServiceQuotaExceededException";
    pub const DOCUMENT_ALREADY_EXISTS: &str = "DocumentAlreadyExists";
    pub const INVALID_DOCUMENT_CONTENT: &str = "InvalidDocumentContent";
    pub const INVALID_DOCUMENT_TYPE:  &str = "InvalidDocumentType";
    pub const DOCUMENT_LIMIT_EXCEEDED: &str = "DocumentLimitExceeded";
    // KMS (sim::kms).
    pub const KMS_NOT_FOUND:          &str = "NotFoundException";
    pub const KMS_INVALID_CIPHERTEXT: &str = "InvalidCiphertextException";
    pub const KMS_INCORRECT_KEY:      &str = "IncorrectKeyException";
    // Any service, for `sim --deny`.
    pub const ACCESS_DENIED:          &str = "AccessDeniedException";
    // Resource Groups Tagging API (sim::tagging).
    pub const INVALID_PARAMETER:      &str = "InvalidParameterException";
    pub const PAGINATION_TOKEN_EXPIRED: &str = "PaginationTokenExpiredException";
}

/// An SSM API error in AWS's shape: `__type` name, message and HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct ApiError {
    /// The `__type` / `x-amzn-ErrorType` name, one of [`kind`].
    pub kind: &'static str,
    pub message: String,
    pub status: u16,
}

impl ApiError {
    /// A client error (HTTP 400, which is what AWS JSON 1.1 uses for nearly every error).
    pub fn new(kind: &'static str, message: impl Into<String>) -> Self {
        let message = message.into();
        Self {
            kind,
            message,
            status: 400,
        }
    }

    /// A `ValidationException` in the service's wording: "N validation errors detected: a; b".
    pub fn validation(problems: &[String]) -> Self {
        let n = problems.len();
        let plural = if n == 1 { "error" } else { "errors" };
        let problems = problems.join("; ");
        Self::new(
            kind::VALIDATION,
            format!("{n} validation {plural} detected: {problems}"),
        )
    }

    pub(crate) fn target_not_connected(target: &str) -> Self {
        Self::new(
            kind::TARGET_NOT_CONNECTED,
            format!("{target} is not connected."),
        )
    }

    pub(crate) fn invalid_parameters(message: impl Into<String>) -> Self {
        Self::new(kind::INVALID_PARAMETERS, message)
    }
}
