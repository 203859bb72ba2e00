//! The client address that throttling, audits and `/metrics` see: the
//! socket peer, or, only when the peer is a configured trusted proxy, the
//! nearest untrusted address in `X-Forwarded-For`.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;
use ipnet::IpNet;

use crate::app::AppState;

/// The resolved client address, stored in the request extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

fn trusted(ip: IpAddr, proxies: &[IpNet]) -> bool {
    proxies.iter().any(|net| net.contains(&ip))
}

/// Walks `X-Forwarded-For` from the right (the hop our proxy added) past
/// trusted proxies; anything unparsable stops the walk, so a client cannot
/// smuggle an address through garbage.
pub fn resolve(peer: IpAddr, forwarded_for: Option<&str>, proxies: &[IpNet]) -> IpAddr {
    if !trusted(peer, proxies) {
        return peer;
    }
    let mut client = peer;
    if let Some(header) = forwarded_for {
        for hop in header.rsplit(',') {
            match hop.trim().parse::<IpAddr>() {
                Ok(ip) => {
                    client = ip;
                    if !trusted(ip, proxies) {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
    }
    client
}

/// Middleware: resolves the client address once per request and stores
/// it as [`ClientIp`].
pub async fn resolve_client_ip(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    if let Some(ConnectInfo(peer)) = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .copied()
    {
        let forwarded: Option<String> = request
            .headers()
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_owned)
            .reduce(|a, b| format!("{a},{b}"));
        let ip = resolve(
            peer.ip(),
            forwarded.as_deref(),
            &state.config.trusted_proxies,
        );
        request.extensions_mut().insert(ClientIp(ip));
    }
    next.run(request).await
}

/// The client's address as resolved by [`resolve_client_ip`] (trusted
/// proxies honoured), else the socket peer.
pub fn client_ip(parts: &Parts) -> Option<IpAddr> {
    parts
        .extensions
        .get::<ClientIp>()
        .map(|ClientIp(ip)| *ip)
        .or_else(|| {
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(addr)| addr.ip())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn untrusted_peers_are_taken_at_their_word_never_the_header() {
        assert_eq!(
            resolve(ip("203.0.113.9"), Some("1.2.3.4"), &nets(&["10.0.0.0/8"])),
            ip("203.0.113.9")
        );
        assert_eq!(
            resolve(ip("203.0.113.9"), Some("1.2.3.4"), &[]),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn trusted_proxies_are_skipped_from_the_right() {
        let proxies = nets(&["10.0.0.0/8"]);
        // The client prepended a fake address; the proxy appended the real one.
        assert_eq!(
            resolve(ip("10.0.0.2"), Some("6.6.6.6, 198.51.100.7"), &proxies),
            ip("198.51.100.7")
        );
        assert_eq!(
            resolve(ip("10.0.0.2"), Some("198.51.100.7, 10.0.0.3"), &proxies),
            ip("198.51.100.7")
        );
        assert_eq!(
            resolve(ip("10.0.0.2"), Some("garbage, 198.51.100.7"), &proxies),
            ip("198.51.100.7")
        );
        assert_eq!(
            resolve(ip("10.0.0.2"), Some("198.51.100.7, garbage"), &proxies),
            ip("10.0.0.2")
        );
        assert_eq!(resolve(ip("10.0.0.2"), None, &proxies), ip("10.0.0.2"));
    }
}
