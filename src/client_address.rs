//! Who a client is, for rate limits: the connection's peer address, or, behind a proxy
//! (`PASSFOLD_TRUST_FORWARDED`), the address that proxy appended to `X-Forwarded-For`: the
//! last entry, the only one a client cannot write itself. Trusting the headers without a
//! proxy would let anyone choose their own address and escape every limit.

use actix_web::HttpRequest;

pub fn of(req: &HttpRequest, trust_forwarded: bool) -> String {
    let forwarded = trust_forwarded
        .then(|| req.headers().get("x-forwarded-for"))
        .flatten()
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string);
    let address = forwarded
        .or_else(|| req.peer_addr().map(|a| a.to_string()))
        .unwrap_or_else(|| "unknown".into());
    // The port differs per connection; the host is the client.
    match address.parse::<std::net::SocketAddr>() {
        Ok(socket) => socket.ip().to_string(),
        Err(_) => address.chars().take(64).collect(),
    }
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    #[test]
    fn only_a_trusted_proxy_says_who_the_client_is() {
        let peer = std::net::SocketAddr::from(([10, 0, 0, 9], 4242));
        let req = TestRequest::default()
            .peer_addr(peer)
            .insert_header(("x-forwarded-for", "1.2.3.4, 203.0.113.7"))
            .to_http_request();
        assert_eq!(super::of(&req, false), "10.0.0.9");
        // The client wrote 1.2.3.4; the proxy appended what it saw.
        assert_eq!(super::of(&req, true), "203.0.113.7");
        let bare = TestRequest::default().peer_addr(peer).to_http_request();
        assert_eq!(super::of(&bare, true), "10.0.0.9");
    }
}
