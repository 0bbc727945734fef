//! Who a client is, for rate limits: the connection's peer address, or, behind a proxy
//! (`PASSFOLD_TRUST_FORWARDED`), the address that proxy appended to `X-Forwarded-For`: the
//! last entry of the last header line, the only one a client cannot write itself (a proxy
//! that adds a line of its own leaves the client's forged line first). Trusting the headers
//! without a proxy would let anyone choose their own address and escape every limit.
//!
//! Only a parseable IP address counts, so arbitrary text cannot mint new keys; IPv6
//! clients count per /64, the block one subscriber usually holds whole.

use actix_web::HttpRequest;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

pub fn of(req: &HttpRequest, trust_forwarded: bool) -> String {
    let forwarded = trust_forwarded
        .then(|| req.headers().get_all("x-forwarded-for").last())
        .flatten()
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .and_then(parse_ip);
    match forwarded.or_else(|| req.peer_addr().map(|a| a.ip())) {
        Some(ip) => key(ip),
        None => "unknown".into(),
    }
}

/// An address as proxies write it: bare, or with a port (`1.2.3.4:5678`, `[2001:db8::1]:443`).
fn parse_ip(text: &str) -> Option<IpAddr> {
    let text = text.trim();
    text.parse::<IpAddr>()
        .ok()
        .or_else(|| text.parse::<SocketAddr>().ok().map(|s| s.ip()))
}

fn key(ip: IpAddr) -> String {
    let ip = match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    };
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            let prefix = Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
            format!("{prefix}/64")
        }
    }
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    fn peer() -> std::net::SocketAddr {
        std::net::SocketAddr::from(([10, 0, 0, 9], 4242))
    }

    #[test]
    fn only_a_trusted_proxy_says_who_the_client_is() {
        let req = TestRequest::default()
            .peer_addr(peer())
            .insert_header(("x-forwarded-for", "1.2.3.4, 203.0.113.7"))
            .to_http_request();
        assert_eq!(super::of(&req, false), "10.0.0.9");
        // The client wrote 1.2.3.4; the proxy appended what it saw.
        assert_eq!(super::of(&req, true), "203.0.113.7");
        let bare = TestRequest::default().peer_addr(peer()).to_http_request();
        assert_eq!(super::of(&bare, true), "10.0.0.9");
    }

    #[test]
    fn the_proxys_own_line_wins_over_a_forged_first_line() {
        let req = TestRequest::default()
            .peer_addr(peer())
            .append_header(("x-forwarded-for", "6.6.6.6"))
            .append_header(("x-forwarded-for", "198.51.100.4, 203.0.113.7"))
            .to_http_request();
        assert_eq!(super::of(&req, true), "203.0.113.7");
    }

    #[test]
    fn text_that_is_no_address_falls_back_to_the_peer() {
        for forged in ["anything-at-all", "1.2.3.4, ", "999.1.1.1", "1.2.3.4 extra"] {
            let req = TestRequest::default()
                .peer_addr(peer())
                .insert_header(("x-forwarded-for", forged))
                .to_http_request();
            assert_eq!(super::of(&req, true), "10.0.0.9", "{forged:?}");
        }
    }

    #[test]
    fn ports_are_dropped_and_ipv6_counts_per_64() {
        for (header, want) in [
            ("203.0.113.7:5555", "203.0.113.7"),
            ("2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::/64"),
            ("[2001:db8:1:2::99]:443", "2001:db8:1:2::/64"),
            ("::ffff:203.0.113.7", "203.0.113.7"),
        ] {
            let req = TestRequest::default()
                .peer_addr(peer())
                .insert_header(("x-forwarded-for", header))
                .to_http_request();
            assert_eq!(super::of(&req, true), want, "{header:?}");
        }
        let v6_peer = TestRequest::default()
            .peer_addr("[2001:db8:5:6:7:8:9:a]:1234".parse().unwrap())
            .to_http_request();
        assert_eq!(super::of(&v6_peer, false), "2001:db8:5:6::/64");
    }
}
