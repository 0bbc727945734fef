//! Where a webhook may be sent: https only, to public addresses only (never loopback,
//! private, link-local, cloud metadata or other special ranges), checked when the endpoint
//! is registered and again before every delivery (a name may resolve elsewhere by then:
//! DNS rebinding); the delivery then connects to the address that was checked.
//! `PASSFOLD_WEBHOOKS_ALLOW_PRIVATE=1` allows http and any address (development, tests).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use url::Url;

/// A URL that passed the static checks, with its host and port.
#[derive(Debug, Clone)]
pub struct Target {
    pub url: Url,
    pub host: String,
    pub port: u16,
}

/// Longest URL accepted.
const MAX_URL: usize = 2000;

/// The URL's shape: absolute http(s) (http only when allowed), a host, no credentials.
pub fn parse(text: &str, allow_private: bool) -> Result<Target, String> {
    if text.len() > MAX_URL {
        return Err(format!("at most {MAX_URL} characters"));
    }
    let url = Url::parse(text.trim()).map_err(|e| format!("not an absolute URL: {e}"))?;
    match url.scheme() {
        "https" => {}
        "http" if allow_private => {}
        _ => return Err("must be an https URL".into()),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry credentials".into());
    }
    let host = match url.host() {
        Some(url::Host::Domain(d)) => d.to_string(),
        Some(url::Host::Ipv4(ip)) => ip.to_string(),
        Some(url::Host::Ipv6(ip)) => ip.to_string(),
        None => return Err("must name a host".into()),
    };
    let port = url
        .port_or_known_default()
        .ok_or_else(|| "must name a port".to_string())?;
    Ok(Target { url, host, port })
}

/// Resolves the target and checks every address it resolves to; returns the first, to
/// connect to. One forbidden address refuses the target (a name that answers with a public
/// and a private address could be steered to the private one).
pub async fn resolve(target: &Target, allow_private: bool) -> Result<SocketAddr, String> {
    let addrs: Vec<SocketAddr> = match target.host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, target.port)],
        Err(_) => tokio::net::lookup_host((target.host.as_str(), target.port))
            .await
            .map_err(|e| format!("{} does not resolve: {e}", target.host))?
            .collect(),
    };
    let first = *addrs
        .first()
        .ok_or_else(|| format!("{} resolves to no address", target.host))?;
    if !allow_private {
        if let Some(bad) = addrs.iter().find(|a| !is_public(a.ip())) {
            return Err(format!(
                "{} resolves to {}, a loopback, private, link-local or reserved address",
                target.host,
                bad.ip()
            ));
        }
    }
    Ok(first)
}

/// Whether an address is on the public internet (not loopback, private, shared,
/// link-local and metadata, multicast, documentation, benchmarking or reserved).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(a == 0
        || a == 10
        || a == 127
        || (a == 100 && (64..128).contains(&b))
        || (a == 169 && b == 254)
        || (a == 172 && (16..32).contains(&b))
        || (a == 192 && b == 0 && c == 0)
        || (a == 192 && b == 0 && c == 2)
        || (a == 192 && b == 168)
        || (a == 198 && (18..20).contains(&b))
        || (a == 198 && b == 51 && c == 100)
        || (a == 203 && b == 0 && c == 113)
        || a >= 224)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let s = ip.segments();
    // NAT64 (64:ff9b::/96) reaches the IPv4 address in its last 32 bits.
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        return is_public_v4(Ipv4Addr::new(
            (s[6] >> 8) as u8,
            s[6] as u8,
            (s[7] >> 8) as u8,
            s[7] as u8,
        ));
    }
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00 // unique local, incl. fd00:ec2::254 (metadata)
        || (s[0] & 0xffc0) == 0xfe80 // link-local
        || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || s[0..6] == [0, 0, 0, 0, 0, 0]) // IPv4-compatible (deprecated)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public(s: &str) -> bool {
        is_public(s.parse().unwrap())
    }

    #[test]
    fn special_addresses_are_not_public() {
        for s in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fd00:ec2::254",
            "fc00::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "2001:db8::1",
            "::127.0.0.1",
        ] {
            assert!(!public(s), "{s}");
        }
        for s in [
            "93.184.216.34",
            "172.32.0.1",
            "8.8.8.8",
            "2606:4700:4700::1111",
        ] {
            assert!(public(s), "{s}");
        }
    }

    #[test]
    fn only_https_without_credentials_unless_allowed() {
        assert!(parse("https://example.com/hook", false).is_ok());
        assert!(parse("http://example.com/hook", false).is_err());
        assert!(parse("http://example.com/hook", true).is_ok());
        assert!(parse("https://u:p@example.com/", false).is_err());
        assert!(parse("ftp://example.com/", true).is_err());
        assert!(parse("not a url", true).is_err());
        assert_eq!(parse("https://[::1]:8443/x", true).unwrap().host, "::1");
    }

    #[tokio::test]
    async fn loopback_and_metadata_are_refused_unless_allowed() {
        for url in [
            "https://127.0.0.1/x",
            "https://169.254.169.254/latest",
            "https://localhost:9/",
        ] {
            let target = parse(url, false).unwrap();
            assert!(resolve(&target, false).await.is_err(), "{url}");
            assert!(resolve(&target, true).await.is_ok(), "{url}");
        }
    }
}
