//! Who a client is, for rate limits: the connection's peer address, or the address a
//! trusted proxy reports (`PASSMINT_TRUST_FORWARDED`). Trusting the headers without a proxy
//! would let anyone choose their own address and escape every limit.

use actix_web::HttpRequest;

pub fn of(req: &HttpRequest, trust_forwarded: bool) -> String {
    let info = req.connection_info();
    let address = if trust_forwarded {
        info.realip_remote_addr()
    } else {
        info.peer_addr()
    };
    let address = address.unwrap_or("unknown");
    // The port differs per connection; the host is the client.
    match address.parse::<std::net::SocketAddr>() {
        Ok(socket) => socket.ip().to_string(),
        Err(_) => address.to_string(),
    }
}
