//! Behaviour switchable at run time: provider quirks and injected faults.

/// Deviations from a by-the-book provider, each copied from a real one.
/// `Quirks::default()` is the by-the-book behaviour.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Quirks {
    /// Token responses (and token errors) as
    /// `application/x-www-form-urlencoded` instead of JSON (GitHub without an
    /// `Accept: application/json` header).
    pub form_encoded_token_response: bool,
    /// How `expires_in` is written.
    pub expires_in: ExpiresIn,
    /// Lifetime (seconds) reported and applied instead of the configured one;
    /// zero or negative issues already expired access tokens.
    pub expires_in_override: Option<i64>,
    /// A refresh returns no new refresh token; the old one stays valid
    /// (Google). Rotation is then off for that refresh.
    pub no_refresh_token_on_refresh: bool,
    /// No refresh token is ever issued.
    pub no_refresh_token: bool,
    /// The `iss` parameter of the authorization response (RFC 9207).
    pub redirect_iss: RedirectIss,
    /// Discovery says `authorization_response_iss_parameter_supported: false`.
    pub hide_iss_support: bool,
    /// Token errors are sent with HTTP 200 and an `error` member (GitHub).
    pub errors_with_200: bool,
    /// Token errors quote every secret the request carried (code, refresh token,
    /// PKCE verifier, client secret), as careless providers echo the refresh token
    /// they refuse. Leak tests use it to see that a provider's error text never
    /// reaches tokenwarden's logs, answers or database.
    pub echo_secrets: EchoSecrets,
}

/// Where token errors quote the secrets of the request (see [`Quirks::echo_secrets`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EchoSecrets {
    /// Nowhere.
    #[default]
    Never,
    /// In `error_description`: `unknown refresh token (request: refresh_token=...)`.
    InDescription,
    /// As the `error` code itself (`refresh_token=... client_secret=...`), as a
    /// provider whose error codes are free text would.
    AsErrorCode,
}

/// How `expires_in` appears in token responses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ExpiresIn {
    /// `"expires_in": 3600`
    #[default]
    Number,
    /// `"expires_in": "3600"`
    String,
    /// Absent (the token still expires after the configured lifetime).
    Omitted,
}

/// The `iss` parameter added to authorization responses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum RedirectIss {
    /// The provider's issuer.
    #[default]
    Correct,
    /// No `iss` parameter.
    Omitted,
    /// This value instead of the issuer (a mix-up attack).
    Wrong(String),
}

/// A fault injected into token endpoint calls.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fault {
    pub kind: FaultKind,
    /// Which token calls it applies to.
    pub scope: FaultScope,
    /// How many matching calls it affects; `None` means until cleared.
    pub times: Option<u32>,
}

impl Fault {
    /// A fault for the next matching call only.
    pub fn once(kind: FaultKind) -> Self {
        Self::times(kind, 1)
    }

    /// A fault for the next `n` matching calls.
    pub fn times(kind: FaultKind, n: u32) -> Self {
        Self {
            kind,
            scope: FaultScope::AllGrants,
            times: Some(n),
        }
    }

    /// A fault for every matching call until the faults are cleared.
    pub fn always(kind: FaultKind) -> Self {
        Self {
            kind,
            scope: FaultScope::AllGrants,
            times: None,
        }
    }

    /// Restricts the fault to `refresh_token` grants.
    pub fn refresh_only(mut self) -> Self {
        self.scope = FaultScope::RefreshOnly;
        self
    }

    /// Restricts the fault to `authorization_code` grants.
    pub fn code_exchange_only(mut self) -> Self {
        self.scope = FaultScope::CodeExchangeOnly;
        self
    }
}

/// What a faulted token call answers. Faults are applied before the request
/// is processed, so no code is consumed and no token rotated, except those
/// whose [`FaultKind::after_processing`] says otherwise.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// HTTP 500 with `{"error":"server_error"}`.
    ServerError,
    /// HTTP 503 with `{"error":"temporarily_unavailable"}`.
    ServiceUnavailable,
    /// HTTP 429 with `Retry-After: retry_after_secs`.
    TooManyRequests { retry_after_secs: u64 },
    /// `invalid_grant` (HTTP 400, or 200 under [`Quirks::errors_with_200`]).
    InvalidGrant,
    /// HTTP 200 with an HTML body that is not a token response.
    GarbageBody,
    /// Keeps the request open for the configured hang duration (or until the
    /// provider shuts down), then answers 504.
    Hang,
    /// Processes the call first (a code is consumed, a refresh token rotated),
    /// then answers as [`FaultKind::ServiceUnavailable`]: a gateway in front of
    /// the provider that lost its answer.
    ServiceUnavailableAfterProcessing,
    /// Processes the call first, then behaves as [`FaultKind::Hang`]: the answer
    /// is lost past the client's timeout.
    HangAfterProcessing,
}

impl FaultKind {
    /// Whether the call is processed before the fault answers it.
    pub fn after_processing(&self) -> bool {
        matches!(
            self,
            Self::ServiceUnavailableAfterProcessing | Self::HangAfterProcessing
        )
    }
}

/// Token calls a [`Fault`] applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultScope {
    AllGrants,
    RefreshOnly,
    CodeExchangeOnly,
}
