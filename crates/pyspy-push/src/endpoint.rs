//! The server URL: checked once, split into the address requests go to and
//! the headers they carry (basic auth from the URL, a bearer token, the
//! tenant). Credentials never appear in messages.

use base64::Engine;

use crate::Error;

/// The Connect path of Pyroscope's ingestion call.
pub(crate) const PUSH_PATH: &str = "/push.v1.PusherService/Push";

/// Where and how to push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    /// `http[s]://host[:port][/prefix]`, without credentials: safe to print.
    pub(crate) display: String,
    /// The full push URL.
    pub(crate) push_url: String,
    /// Extra request headers.
    pub(crate) headers: Vec<(String, String)>,
}

impl Endpoint {
    /// Checks `url` (an `http://` or `https://` URL, optionally `user:password@`, with an
    /// optional path prefix for servers behind a proxy) and builds the
    /// headers.
    pub(crate) fn parse(
        url: &str,
        token: Option<&str>,
        tenant: Option<&str>,
    ) -> Result<Endpoint, Error> {
        let bad = |why: &str| Error::Invalid(format!("invalid push URL '{}': {why}", redact(url)));
        let url = url.trim();
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| bad("expected http://HOST[:PORT][/PATH]"))?;
        let scheme = scheme.to_ascii_lowercase();
        match scheme.as_str() {
            "http" => {}
            "https" if crate::tls::AVAILABLE => {}
            "https" => {
                return Err(Error::Unsupported(format!(
                    "push URL '{}': https is not supported by this build (it has no TLS stack); \
                     use http:// to a server or a TLS-terminating proxy on a trusted network",
                    redact(url)
                )))
            }
            _ => return Err(bad("the scheme must be http or https")),
        }
        if rest.contains(['?', '#']) {
            return Err(bad("no query or fragment allowed"));
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        check_host_port(hostport).map_err(|why| bad(&why))?;
        let path = path.trim_end_matches('/');
        let base = format!("{scheme}://{hostport}{path}");
        let mut headers = Vec::new();
        if let Some(userinfo) = userinfo {
            if token.is_some() {
                return Err(bad(
                    "give either credentials in the URL or a token, not both",
                ));
            }
            let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
            let user = percent_decode(user).ok_or_else(|| bad("bad %-escape in the user name"))?;
            let password =
                percent_decode(password).ok_or_else(|| bad("bad %-escape in the password"))?;
            let encoded =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            headers.push(("Authorization".into(), format!("Basic {encoded}")));
        }
        if let Some(token) = token {
            if token.is_empty() || token.contains(['\r', '\n']) {
                return Err(Error::Invalid(
                    "the push token must be non-empty and one line".into(),
                ));
            }
            headers.push(("Authorization".into(), format!("Bearer {token}")));
        }
        if let Some(tenant) = tenant {
            if tenant.is_empty() || !tenant.chars().all(|c| c.is_ascii_graphic()) {
                return Err(Error::Invalid(format!(
                    "invalid push tenant '{tenant}': expected printable ASCII without spaces"
                )));
            }
            headers.push(("X-Scope-OrgID".into(), tenant.into()));
        }
        Ok(Endpoint {
            push_url: format!("{base}{PUSH_PATH}"),
            display: base,
            headers,
        })
    }
}

fn check_host_port(hostport: &str) -> Result<(), String> {
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or("unclosed '[' in the host")?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or("expected ':PORT' after ']'")?),
        };
        (host, port)
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'));
    if !host_ok {
        return Err("missing or malformed host".into());
    }
    if let Some(port) = port {
        match port.parse::<u16>() {
            Ok(p) if p > 0 => {}
            _ => return Err(format!("bad port '{port}'")),
        }
    }
    Ok(())
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// `url` with any `user:password@` replaced by `***@`, for messages.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let end = rest.find('/').unwrap_or(rest.len());
    match rest[..end].rfind('@') {
        Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_url_with_prefix_and_tenant() {
        let e = Endpoint::parse("http://127.0.0.1:4040/pyro/", None, Some("team-a")).unwrap();
        assert_eq!(e.display, "http://127.0.0.1:4040/pyro");
        assert_eq!(
            e.push_url,
            "http://127.0.0.1:4040/pyro/push.v1.PusherService/Push"
        );
        assert_eq!(e.headers, vec![("X-Scope-OrgID".into(), "team-a".into())]);
    }

    #[test]
    fn basic_auth_from_the_url_is_never_displayed() {
        let e = Endpoint::parse("http://al%40ce:s3cr%3At@host:80", None, None).unwrap();
        assert_eq!(e.display, "http://host:80");
        // base64("al@ce:s3cr:t")
        assert_eq!(
            e.headers,
            vec![("Authorization".into(), "Basic YWxAY2U6czNjcjp0".into())]
        );
        assert_eq!(redact("http://u:p@h:1/x"), "http://***@h:1/x");
    }

    #[test]
    fn bearer_token() {
        let e = Endpoint::parse("http://h", Some("abc"), None).unwrap();
        assert_eq!(
            e.headers,
            vec![("Authorization".into(), "Bearer abc".into())]
        );
        assert!(Endpoint::parse("http://u:p@h", Some("abc"), None).is_err());
    }

    #[test]
    fn malformed_urls_are_refused_with_codes() {
        for bad in [
            "localhost:4040",
            "ftp://h",
            "http://",
            "http://h:0",
            "http://h:99999",
            "http://h:x",
            "http://h?x=1",
            "http://h o",
            "http://[::1",
        ] {
            let err = Endpoint::parse(bad, None, None).unwrap_err();
            assert_eq!(err.code(), "EINVAL", "{bad}: {err}");
        }
        let tls = Endpoint::parse("https://u:secret@h", None, None);
        if crate::tls::AVAILABLE {
            let e = tls.unwrap();
            assert_eq!(e.display, "https://h");
            assert_eq!(e.push_url, format!("https://h{PUSH_PATH}"));
        } else {
            let err = tls.unwrap_err();
            assert_eq!(err.code(), "EUNSUPPORTED");
            assert!(!err.to_string().contains("secret"), "{err}");
        }
        let err = Endpoint::parse("ftp://u:secret@h", None, None).unwrap_err();
        assert_eq!(err.code(), "EINVAL");
        assert!(!err.to_string().contains("secret"), "{err}");
        assert!(Endpoint::parse("http://[::1]:4040", None, None).is_ok());
    }
}
