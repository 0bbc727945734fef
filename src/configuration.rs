//! Configuration from environment variables (12-factor), parsed once at start.
//!
//! A bad value stops the start with one line naming the variable, so an operator never has
//! to guess which of a dozen settings is wrong.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

/// `Debug` is written by hand (below) so no log line can print the database password.
#[derive(Clone)]
pub struct Settings {
    /// `DATABASE_URL`; `None` means: run a private cluster under `data_dir`.
    pub database_url: Option<String>,
    pub data_dir: PathBuf,
    pub bind: SocketAddr,
    /// Absolute base URL without a trailing slash.
    pub public_url: String,
    /// True when `PASSFOLD_PUBLIC_URL` is unset: the URL follows the bound address (and the
    /// real port, when binding port 0).
    pub public_url_from_bind: bool,
    pub log_format: LogFormat,
    /// Largest request body accepted, in bytes.
    pub body_limit: usize,
    pub db_pool_size: u32,
    /// Directory holding `initdb`, `pg_ctl` and `postgres`; found automatically when unset.
    pub pg_bin_dir: Option<PathBuf>,
    pub apple: AppleSettings,
    pub apns: ApnsSettings,
    pub google: GoogleSettings,
    /// Largest balance a gift card may hold, in minor units.
    pub gift_card_max_balance: i64,
    /// Memory for signed passes kept to answer repeated downloads; 0 turns it off.
    pub pass_cache_bytes: usize,
    /// How long idempotency keys are kept (at least 24 hours).
    pub idempotency_hours: i64,
    /// Whether the client address of rate limits is the last `X-Forwarded-For` entry (the
    /// one a trusted proxy appended) rather than the connection's peer.
    pub trust_forwarded: bool,
    /// Slow clients and heavy uploads (see `http_limits` and `template::images`).
    pub limits: LimitSettings,
    /// `PASSFOLD_OUTBOX_LEASE_SECS`: how long a claimed delivery stays with the process
    /// sending it without renewal (the wait before another takes over from one that died).
    pub outbox_lease: std::time::Duration,
    /// `PASSFOLD_OUTBOX_LANES`: delivery loops per channel in this process. While one lane
    /// waits on APNs or Google, another claims, plans and settles the next batch, as a
    /// second process would.
    pub outbox_lanes: usize,
    /// `PASSFOLD_SESSION_IDLE_MINUTES`: a console session ends after this long without a
    /// request.
    pub session_idle: chrono::Duration,
    /// `PASSFOLD_SESSION_MAX_HOURS`: a console session ends this long after sign-in.
    pub session_max: chrono::Duration,
    /// `PASSFOLD_SEGMENTS_EVERY_MINUTES`: how often the worker recomputes every member's
    /// RFM scores and lifecycle stage in full (jobs::segments).
    pub segments_every: std::time::Duration,
    /// `PASSFOLD_WEBHOOKS_ALLOW_PRIVATE=1`: webhook URLs may be plain http and reach
    /// loopback and private addresses (development and tests only).
    pub webhooks_allow_private: bool,
}

/// How much one client may hold, and how much image work runs at once.
#[derive(Debug, Clone)]
pub struct LimitSettings {
    /// `PASSFOLD_BODY_TIMEOUT_SECS`: time from a request's headers to the end of its body.
    pub body_timeout: std::time::Duration,
    /// `PASSFOLD_MAX_REQUESTS_PER_CLIENT`: requests one client address may have in flight.
    pub requests_per_client: usize,
    /// `PASSFOLD_MAX_CONNECTIONS`: open connections of the whole server.
    pub max_connections: usize,
    /// `PASSFOLD_IMAGE_DECODES`: PNG decodes at once; default the number of cores.
    pub image_decodes: usize,
}

/// Google Wallet (contract: `GOOGLE_*` variables).
#[derive(Debug, Clone)]
pub struct GoogleSettings {
    /// `None`: the example issuer id of `certs-example/`.
    pub issuer_id: Option<String>,
    /// `None`: the example service-account key of `certs-example/`.
    pub service_account_key: Option<PathBuf>,
    pub api_url: String,
    pub token_url: String,
    pub callback_keys_url: String,
    /// Wallet API requests this process sends per second (Google allows 20 per issuer).
    pub requests_per_second: u32,
}

/// Where pushes go (contract: `APNS_URL`, `APNS_CA_FILE`).
#[derive(Debug, Clone)]
pub struct ApnsSettings {
    pub url: String,
    /// An extra trusted root for the APNs connection (tests use a loopback stand-in).
    pub ca_file: Option<PathBuf>,
}

/// Where the Pass Type ID identity comes from (contract: `APPLE_*` variables).
#[derive(Debug, Clone)]
pub struct AppleSettings {
    pub pass_type_id: Option<String>,
    pub team_id: Option<String>,
    pub source: AppleIdentitySource,
    /// `None`: the example WWDR stand-in of `certs-example/`.
    pub wwdr: Option<PathBuf>,
}

/// `Debug` is written by hand (below): the PKCS#12 password never reaches a log.
#[derive(Clone)]
pub enum AppleIdentitySource {
    /// `certs-example/`, built into the binary.
    Example,
    Pem {
        cert: PathBuf,
        key: PathBuf,
    },
    P12 {
        path: PathBuf,
        password: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Destructured without `..`: a new field fails to compile here until someone decides
        // whether it is a secret.
        let Settings {
            database_url,
            data_dir,
            bind,
            public_url,
            public_url_from_bind,
            log_format,
            body_limit,
            db_pool_size,
            pg_bin_dir,
            apple,
            apns,
            google,
            gift_card_max_balance,
            pass_cache_bytes,
            idempotency_hours,
            trust_forwarded,
            limits,
            outbox_lease,
            outbox_lanes,
            session_idle,
            session_max,
            segments_every,
            webhooks_allow_private,
        } = self;
        f.debug_struct("Settings")
            .field(
                "database_url",
                &database_url.as_deref().map(redact_database_url),
            )
            .field("data_dir", data_dir)
            .field("bind", bind)
            .field("public_url", public_url)
            .field("public_url_from_bind", public_url_from_bind)
            .field("log_format", log_format)
            .field("body_limit", body_limit)
            .field("db_pool_size", db_pool_size)
            .field("pg_bin_dir", pg_bin_dir)
            .field("apple", apple)
            .field("apns", apns)
            .field("google", google)
            .field("gift_card_max_balance", gift_card_max_balance)
            .field("pass_cache_bytes", pass_cache_bytes)
            .field("idempotency_hours", idempotency_hours)
            .field("trust_forwarded", trust_forwarded)
            .field("limits", limits)
            .field("outbox_lease", outbox_lease)
            .field("outbox_lanes", outbox_lanes)
            .field("session_idle", session_idle)
            .field("session_max", session_max)
            .field("segments_every", segments_every)
            .field("webhooks_allow_private", webhooks_allow_private)
            .finish()
    }
}

impl fmt::Debug for AppleIdentitySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Example => f.write_str("Example"),
            Self::Pem { cert, key } => f
                .debug_struct("Pem")
                .field("cert", cert)
                .field("key", key)
                .finish(),
            Self::P12 { path, password } => f
                .debug_struct("P12")
                .field("path", path)
                .field("password", &if password.is_empty() { "" } else { "***" })
                .finish(),
        }
    }
}

/// A PostgreSQL URL with its password (in the user part or a `password=` parameter)
/// replaced by `***`, for logs.
pub fn redact_database_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => authority.to_string(),
        },
        None => authority.to_string(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((name, _)) if name.eq_ignore_ascii_case("password") => {
                        format!("{name}=***")
                    }
                    _ => pair.to_string(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_string(),
    };
    if scheme.is_empty() {
        format!("{authority}{tail}")
    } else {
        format!("{scheme}://{authority}{tail}")
    }
}

/// One configuration problem, naming the variable at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub variable: &'static str,
    pub problem: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "configuration error in {}: {}",
            self.variable, self.problem
        )
    }
}

impl std::error::Error for ConfigError {}

fn bad(variable: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        variable,
        problem: problem.into(),
    }
}

impl Settings {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Parses settings from any lookup function; tests use a map instead of the process
    /// environment. An empty value counts as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());

        let database_url = match get("DATABASE_URL") {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Some(url)
            }
            Some(_) => {
                return Err(bad(
                    "DATABASE_URL",
                    "must be a postgres:// or postgresql:// URL",
                ))
            }
            None => None,
        };
        let data_dir =
            PathBuf::from(get("PASSFOLD_DATA_DIR").unwrap_or_else(|| ".passfold".into()));
        let bind_text = get("PASSFOLD_BIND").unwrap_or_else(|| "127.0.0.1:8080".into());
        let bind: SocketAddr = bind_text.parse().map_err(|_| {
            bad(
                "PASSFOLD_BIND",
                format!("{bind_text:?} is not an address with a port, such as 127.0.0.1:8080"),
            )
        })?;
        let public_url_from_bind = get("PASSFOLD_PUBLIC_URL").is_none();
        let public_url = match get("PASSFOLD_PUBLIC_URL") {
            Some(text) => parse_public_url(&text, get("PASSFOLD_ALLOW_HTTP").as_deref())?,
            None => format!("http://{bind}"),
        };
        let log_format = match get("PASSFOLD_LOG_FORMAT").as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(bad(
                    "PASSFOLD_LOG_FORMAT",
                    format!("{other:?} is neither \"text\" nor \"json\""),
                ))
            }
        };
        let body_limit = parse_number(
            &get,
            "PASSFOLD_BODY_LIMIT_BYTES",
            4 * 1024 * 1024,
            1024,
            64 * 1024 * 1024,
        )?;
        let db_pool_size = parse_number(&get, "PASSFOLD_DB_POOL_SIZE", 16, 1, 1000)? as u32;
        let pg_bin_dir = get("PASSFOLD_PG_BIN").map(PathBuf::from);
        let apple = parse_apple(&get)?;
        let apns = ApnsSettings {
            url: match get("APNS_URL") {
                Some(text) => parse_base_url("APNS_URL", &text)?,
                None => "https://api.push.apple.com".into(),
            },
            ca_file: get("APNS_CA_FILE").map(PathBuf::from),
        };
        let google = parse_google(&get)?;
        let idempotency_hours =
            parse_number(&get, "PASSFOLD_IDEMPOTENCY_HOURS", 48, 24, 24 * 365)? as i64;
        let pass_cache_bytes = parse_number(
            &get,
            "PASSFOLD_PASS_CACHE_BYTES",
            64 * 1024 * 1024,
            0,
            16 * 1024 * 1024 * 1024,
        )?;
        let trust_forwarded = parse_flag(&get, "PASSFOLD_TRUST_FORWARDED")?;
        let webhooks_allow_private = parse_flag(&get, "PASSFOLD_WEBHOOKS_ALLOW_PRIVATE")?;
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let limits = LimitSettings {
            body_timeout: std::time::Duration::from_secs(parse_number(
                &get,
                "PASSFOLD_BODY_TIMEOUT_SECS",
                30,
                1,
                3600,
            )? as u64),
            requests_per_client: parse_number(
                &get,
                "PASSFOLD_MAX_REQUESTS_PER_CLIENT",
                64,
                1,
                1_000_000,
            )?,
            max_connections: parse_number(&get, "PASSFOLD_MAX_CONNECTIONS", 4096, 16, 1_000_000)?,
            image_decodes: parse_number(&get, "PASSFOLD_IMAGE_DECODES", cores, 1, 1024)?,
        };
        let gift_card_max_balance = parse_number(
            &get,
            "PASSFOLD_GIFT_CARD_MAX_BALANCE",
            100_000_000,
            1,
            1_000_000_000_000,
        )? as i64;
        let outbox_lease = std::time::Duration::from_secs(parse_number(
            &get,
            "PASSFOLD_OUTBOX_LEASE_SECS",
            30,
            3,
            3600,
        )? as u64);
        let outbox_lanes = parse_number(&get, "PASSFOLD_OUTBOX_LANES", 2, 1, 16)?;
        let session_idle = chrono::Duration::minutes(parse_number(
            &get,
            "PASSFOLD_SESSION_IDLE_MINUTES",
            30,
            1,
            24 * 60,
        )? as i64);
        let session_max = chrono::Duration::hours(parse_number(
            &get,
            "PASSFOLD_SESSION_MAX_HOURS",
            12,
            1,
            24 * 30,
        )? as i64);
        let segments_every = std::time::Duration::from_secs(
            60 * parse_number(
                &get,
                "PASSFOLD_SEGMENTS_EVERY_MINUTES",
                24 * 60,
                1,
                7 * 24 * 60,
            )? as u64,
        );
        Ok(Settings {
            webhooks_allow_private,
            segments_every,
            session_idle,
            session_max,
            database_url,
            data_dir,
            bind,
            public_url,
            public_url_from_bind,
            log_format,
            body_limit,
            db_pool_size,
            pg_bin_dir,
            apple,
            apns,
            google,
            gift_card_max_balance,
            pass_cache_bytes,
            idempotency_hours,
            trust_forwarded,
            limits,
            outbox_lease,
            outbox_lanes,
        })
    }
}

/// A yes/no variable: 1, true, yes or 0, false, no; unset is no.
fn parse_flag(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
) -> Result<bool, ConfigError> {
    match get(name).as_deref().map(str::trim) {
        None | Some("" | "0" | "false" | "no") => Ok(false),
        Some("1" | "true" | "yes") => Ok(true),
        Some(other) => Err(bad(
            name,
            format!("{other:?} is not one of 1, true, yes, 0, false, no"),
        )),
    }
}

fn parse_apple(get: &impl Fn(&str) -> Option<String>) -> Result<AppleSettings, ConfigError> {
    let source = match (
        get("APPLE_PASS_P12"),
        get("APPLE_PASS_CERT"),
        get("APPLE_PASS_KEY"),
    ) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
            return Err(bad(
                "APPLE_PASS_P12",
                "set either APPLE_PASS_P12 or APPLE_PASS_CERT + APPLE_PASS_KEY, not both",
            ))
        }
        (Some(path), None, None) => AppleIdentitySource::P12 {
            path: PathBuf::from(path),
            password: get("APPLE_PASS_P12_PASSWORD").unwrap_or_default(),
        },
        (None, Some(cert), Some(key)) => AppleIdentitySource::Pem {
            cert: PathBuf::from(cert),
            key: PathBuf::from(key),
        },
        (None, Some(_), None) => {
            return Err(bad("APPLE_PASS_KEY", "required with APPLE_PASS_CERT"))
        }
        (None, None, Some(_)) => {
            return Err(bad("APPLE_PASS_CERT", "required with APPLE_PASS_KEY"))
        }
        (None, None, None) => AppleIdentitySource::Example,
    };
    let wwdr = get("APPLE_WWDR_CERT").map(PathBuf::from);
    if wwdr.is_none() && !matches!(source, AppleIdentitySource::Example) {
        return Err(bad(
            "APPLE_WWDR_CERT",
            "required with a real identity: Apple's WWDR G4 intermediate certificate (PEM or DER)",
        ));
    }
    let pass_type_id = get("APPLE_PASS_TYPE_ID");
    if let Some(id) = &pass_type_id {
        if !id.starts_with("pass.") || id.contains(char::is_whitespace) {
            return Err(bad(
                "APPLE_PASS_TYPE_ID",
                format!("{id:?} is not a pass type identifier such as pass.com.example.loyalty"),
            ));
        }
    }
    let team_id = get("APPLE_TEAM_ID");
    if let Some(id) = &team_id {
        if id.len() != 10
            || !id
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        {
            return Err(bad(
                "APPLE_TEAM_ID",
                format!("{id:?} is not a 10-character Apple team id"),
            ));
        }
    }
    Ok(AppleSettings {
        pass_type_id,
        team_id,
        source,
        wwdr,
    })
}

fn parse_number(
    get: &impl Fn(&str) -> Option<String>,
    variable: &'static str,
    default: usize,
    min: usize,
    max: usize,
) -> Result<usize, ConfigError> {
    match get(variable) {
        None => Ok(default),
        Some(text) => match text.trim().parse::<usize>() {
            Ok(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(bad(
                variable,
                format!("{text:?} is not a whole number from {min} to {max}"),
            )),
        },
    }
}

impl GoogleSettings {
    /// Whether Google Wallet is set up at all: an issuer, a key, or an API of our own
    /// choosing (tests). Without any, nothing is sent to Google: the example key would be
    /// refused anyway.
    pub fn configured(&self) -> bool {
        self.issuer_id.is_some()
            || self.service_account_key.is_some()
            || self.api_url != "https://walletobjects.googleapis.com"
    }
}

fn parse_google(get: &impl Fn(&str) -> Option<String>) -> Result<GoogleSettings, ConfigError> {
    let issuer_id = get("GOOGLE_ISSUER_ID");
    if let Some(id) = &issuer_id {
        if id.is_empty() || id.len() > 30 || !id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad(
                "GOOGLE_ISSUER_ID",
                format!("{id:?} is not a Google Wallet issuer id (digits)"),
            ));
        }
    }
    let url = |variable: &'static str, default: &str| match get(variable) {
        Some(text) => parse_base_url(variable, &text),
        None => Ok(default.to_string()),
    };
    Ok(GoogleSettings {
        issuer_id,
        service_account_key: get("GOOGLE_SERVICE_ACCOUNT_KEY").map(PathBuf::from),
        api_url: url(
            "GOOGLE_WALLET_API_URL",
            "https://walletobjects.googleapis.com",
        )?,
        token_url: url(
            "GOOGLE_OAUTH_TOKEN_URL",
            "https://oauth2.googleapis.com/token",
        )?,
        callback_keys_url: url(
            "GOOGLE_CALLBACK_KEYS_URL",
            "https://pay.google.com/gp/m/issuer/keys",
        )?,
        requests_per_second: parse_number(get, "PASSFOLD_GOOGLE_REQUESTS_PER_SECOND", 15, 1, 1000)?
            as u32,
    })
}

/// An absolute http(s) base URL of an outside service, without a trailing slash.
fn parse_base_url(variable: &'static str, text: &str) -> Result<String, ConfigError> {
    match url::Url::parse(text) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host_str().is_some() => {
            Ok(url.as_str().trim_end_matches('/').to_string())
        }
        _ => Err(bad(variable, format!("{text:?} is not an http(s) URL"))),
    }
}

impl Settings {
    /// The loud warning a start on plain HTTP deserves (every http:// public URL that
    /// passed [`parse_public_url`]: loopback, the default, or `PASSFOLD_ALLOW_HTTP=1`).
    pub fn plain_http_warning(&self) -> Option<String> {
        self.public_url.starts_with("http://").then(|| {
            format!(
                "PASSFOLD_PUBLIC_URL is {} (plain HTTP): iPhones will not register for updates of passes \
                 pointing there; fine for development only, set an https:// URL in production",
                self.public_url
            )
        })
    }
}

/// Production iPhones never talk to an `http://` `webServiceURL` (Wallet requires HTTPS),
/// so a plain-HTTP public URL is refused unless its host is loopback (a developer's
/// machine) or `PASSFOLD_ALLOW_HTTP=1` says it is on purpose.
fn parse_public_url(text: &str, allow_http: Option<&str>) -> Result<String, ConfigError> {
    let url = url::Url::parse(text).map_err(|e| {
        bad(
            "PASSFOLD_PUBLIC_URL",
            format!("{text:?} is not an absolute URL ({e})"),
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(bad(
            "PASSFOLD_PUBLIC_URL",
            format!("{text:?} must be an http:// or https:// URL with a host"),
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad(
            "PASSFOLD_PUBLIC_URL",
            "must not carry a query or a fragment",
        ));
    }
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    let allowed = matches!(allow_http.map(str::trim), Some("1" | "true" | "yes"));
    if url.scheme() == "http" && !loopback && !allowed {
        return Err(bad(
            "PASSFOLD_PUBLIC_URL",
            format!("{text:?} is plain http://, and iPhones only register passes with an https:// web service; use https, or set PASSFOLD_ALLOW_HTTP=1 for development"),
        ));
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_follow_the_contract() -> Result<(), ConfigError> {
        let s = settings(&[])?;
        assert_eq!(s.database_url, None);
        assert_eq!(s.data_dir, PathBuf::from(".passfold"));
        assert_eq!(s.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(s.public_url, "http://127.0.0.1:8080");
        Ok(())
    }

    #[test]
    fn public_url_loses_its_trailing_slash() -> Result<(), ConfigError> {
        let s = settings(&[("PASSFOLD_PUBLIC_URL", "https://cards.example.com/")])?;
        assert_eq!(s.public_url, "https://cards.example.com");
        Ok(())
    }

    #[test]
    fn plain_http_public_urls_only_on_loopback_or_when_allowed() -> Result<(), ConfigError> {
        for url in [
            "http://127.0.0.1:8080",
            "http://localhost:8080",
            "http://[::1]:8080",
        ] {
            let s = settings(&[("PASSFOLD_PUBLIC_URL", url)])?;
            assert!(s.plain_http_warning().is_some(), "{url}");
        }
        let s = settings(&[
            ("PASSFOLD_PUBLIC_URL", "http://192.168.1.20:8080"),
            ("PASSFOLD_ALLOW_HTTP", "1"),
        ])?;
        assert!(s.plain_http_warning().is_some());
        assert!(settings(&[])?.plain_http_warning().is_some());
        let s = settings(&[("PASSFOLD_PUBLIC_URL", "https://cards.example.com")])?;
        assert_eq!(s.plain_http_warning(), None);
        Ok(())
    }

    #[test]
    fn each_bad_value_names_its_variable() {
        for (var, value) in [
            ("PASSFOLD_BIND", "localhost"),
            ("PASSFOLD_PUBLIC_URL", "cards.example.com"),
            ("PASSFOLD_PUBLIC_URL", "ftp://x"),
            ("PASSFOLD_PUBLIC_URL", "http://cards.example.com"),
            ("DATABASE_URL", "mysql://x"),
            ("PASSFOLD_LOG_FORMAT", "xml"),
            ("PASSFOLD_DB_POOL_SIZE", "0"),
            ("PASSFOLD_BODY_TIMEOUT_SECS", "0"),
            ("PASSFOLD_MAX_REQUESTS_PER_CLIENT", "many"),
            ("PASSFOLD_IMAGE_DECODES", "0"),
            ("PASSFOLD_OUTBOX_LANES", "0"),
            ("PASSFOLD_OUTBOX_LANES", "17"),
        ] {
            let Err(err) = settings(&[(var, value)]) else {
                panic!("{var}={value:?} must be refused");
            };
            assert_eq!(err.variable, var);
            assert!(err.to_string().contains(var));
        }
    }
}

#[cfg(test)]
mod apple_tests {
    use super::*;
    use std::collections::HashMap;

    fn apple(pairs: &[(&str, &str)]) -> Result<AppleSettings, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(|k| map.get(k).cloned()).map(|s| s.apple)
    }

    #[test]
    fn identity_sources_follow_the_contract_variables() -> Result<(), ConfigError> {
        assert!(matches!(apple(&[])?.source, AppleIdentitySource::Example));
        let pem = apple(&[
            ("APPLE_PASS_CERT", "c.pem"),
            ("APPLE_PASS_KEY", "k.pem"),
            ("APPLE_WWDR_CERT", "w.cer"),
        ])?;
        assert!(matches!(pem.source, AppleIdentitySource::Pem { .. }));
        let p12 = apple(&[
            ("APPLE_PASS_P12", "x.p12"),
            ("APPLE_PASS_P12_PASSWORD", "pw"),
            ("APPLE_WWDR_CERT", "w.cer"),
            ("APPLE_TEAM_ID", "ABCDE12345"),
        ])?;
        assert!(
            matches!(p12.source, AppleIdentitySource::P12 { ref password, .. } if password == "pw")
        );
        assert_eq!(p12.team_id.as_deref(), Some("ABCDE12345"));
        for (pairs, var) in [
            (vec![("APPLE_PASS_CERT", "c.pem")], "APPLE_PASS_KEY"),
            (
                vec![("APPLE_PASS_CERT", "c.pem"), ("APPLE_PASS_KEY", "k.pem")],
                "APPLE_WWDR_CERT",
            ),
            (
                vec![("APPLE_PASS_TYPE_ID", "com.example")],
                "APPLE_PASS_TYPE_ID",
            ),
            (vec![("APPLE_TEAM_ID", "short")], "APPLE_TEAM_ID"),
        ] {
            assert_eq!(apple(&pairs).err().map(|e| e.variable), Some(var));
        }
        Ok(())
    }

    #[test]
    fn debug_never_shows_the_database_or_p12_password() -> Result<(), ConfigError> {
        let map: HashMap<&str, &str> = HashMap::from([
            (
                "DATABASE_URL",
                "postgres://app:s3cr3t-pw@db.internal:5432/cards?sslmode=require&password=other-pw",
            ),
            ("APPLE_PASS_P12", "pass.p12"),
            ("APPLE_PASS_P12_PASSWORD", "p12-pw"),
            ("APPLE_WWDR_CERT", "wwdr.cer"),
        ]);
        let s = Settings::from_lookup(|k| map.get(k).map(|v| v.to_string()))?;
        let shown = format!("{s:?}");
        for secret in ["s3cr3t-pw", "other-pw", "p12-pw"] {
            assert!(!shown.contains(secret), "{secret} leaked: {shown}");
        }
        assert!(shown
            .contains("postgres://app:***@db.internal:5432/cards?sslmode=require&password=***"));
        assert!(shown.contains("pass.p12"));
        assert_eq!(
            redact_database_url("postgresql://postgres@127.0.0.1/x"),
            "postgresql://postgres@127.0.0.1/x"
        );
        Ok(())
    }
}
