//! The data-center URL a user gives, checked and turned into the API base.

use std::net::IpAddr;

use reqwest::Url;

use super::*;

/// Checks a data-center URL and turns it into the API base (`…/api/2/`). Only `https://` is
/// accepted, except for loopback addresses (the sandbox and tests); the path may only be `/api/2`
/// (a console page's path, copied from the browser, is not the API).
pub(crate) fn api_base(text: &str) -> Result<Url, ApiError> {
    Ok(check_base(text)?)
}

pub(super) fn check_base(text: &str) -> Result<Url, BaseUrlError> {
    let trimmed = text.trim();
    let shown = one_line(trimmed, 120);
    // `eu2-cloud.acronis.com` is a relative URL to the parser, and `host:443` one whose scheme
    // is the host: neither says what was meant.
    if !trimmed.contains("://") {
        return Err(if trimmed.is_empty() {
            BaseUrlError::Unparsable {
                url: shown,
                reason: "it is empty".to_owned(),
            }
        } else {
            BaseUrlError::NoScheme { url: shown }
        });
    }
    let mut url = Url::parse(trimmed).map_err(|e| BaseUrlError::Unparsable {
        url: shown.clone(),
        reason: e.to_string(),
    })?;
    if !url.username().is_empty() || url.password().is_some() {
        // Said without them: the password is a secret.
        let _ = url.set_username("");
        let _ = url.set_password(None);
        return Err(BaseUrlError::Credentials {
            url: one_line(url.as_str(), 120),
        });
    }
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => return Err(BaseUrlError::PlainHttp { url: shown }),
        scheme => {
            return Err(BaseUrlError::Scheme {
                scheme: one_line(scheme, 20),
                url: shown,
            });
        }
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(BaseUrlError::Unparsable {
            url: shown,
            reason: "it has no host".to_owned(),
        });
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(BaseUrlError::QueryOrFragment { url: shown });
    }
    let path = url.path().trim_end_matches('/').to_owned();
    if !path.is_empty() && path != "/api/2" {
        return Err(BaseUrlError::Path {
            url: shown,
            path: one_line(url.path(), 60),
        });
    }
    url.set_path("/api/2/");
    Ok(url)
}

/// The one spelling of an API base URL that the journal and the manifest use: the parsed base
/// (scheme and host lowercased, default port dropped, `.`/`..` and `%2e` resolved, spaces
/// trimmed) without its `/api/2/` ending, so that `HTTP://Host/api/2/` and `http://host` agree.
pub(crate) fn canonical_base(base: &Url) -> String {
    let text = base.as_str();
    let text = text.strip_suffix("api/2/").unwrap_or(text);
    text.trim_end_matches('/').to_owned()
}

pub(crate) fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}
