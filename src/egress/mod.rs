//! Where webhooks may go: only to public addresses, unless the operator allows more.
//!
//! One policy, checked at two moments. At registration and update, a URL whose host is
//! an IP literal (in any form a parser accepts) must name an address Herald may reach
//! ([`EgressPolicy::check_url`]). At connect time, for every attempt, every address a
//! host name resolved to is checked ([`EgressPolicy::check`], called by the delivery
//! client's resolver), and the connection goes only to an address that passed: there is
//! no second lookup, so a name that resolves to a public address today and to an
//! internal one tomorrow (DNS rebinding) gets nowhere.
//!
//! `address` classifies one address: only globally routable ones pass. The escapes are
//! explicit: `WEBHOOK_EGRESS_ALLOW_CIDRS` (blocks of addresses, or exact sockets), and
//! `WEBHOOK_EGRESS_PROXY` (an HTTP CONNECT or SOCKS5 proxy, which then resolves names
//! and enforces its own rules). Herald's own listening sockets are never reached through
//! a webhook, even inside an allowed block, unless an entry names the socket exactly.

pub mod address;

use std::fmt;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use async_trait::async_trait;
use ipnet::IpNet;

use crate::domain::Invalid;

/// One entry of the allow-list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allowed {
    /// Every address of the block (a bare address is a block of one).
    Net(IpNet),
    /// Exactly this socket, even when it is one of Herald's own.
    Socket(SocketAddr),
}

impl FromStr for Allowed {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if let Ok(net) = s.parse::<IpNet>() {
            return Ok(Self::Net(net.trunc()));
        }
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(Self::Net(IpNet::from(ip.to_canonical())));
        }
        if let Ok(socket) = s.parse::<SocketAddr>() {
            return Ok(Self::Socket(SocketAddr::new(
                socket.ip().to_canonical(),
                socket.port(),
            )));
        }
        Err(format!(
            "{s:?} is neither a CIDR block (10.0.0.0/8, fd00::/8), an address, nor a socket (127.0.0.1:9464, [::1]:9464)"
        ))
    }
}

impl fmt::Display for Allowed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Net(net) => net.fmt(f),
            Self::Socket(socket) => socket.fmt(f),
        }
    }
}

/// Resolves host names for delivery instead of the system resolver: for an application
/// that embeds Herald with its own name service, and for tests.
#[async_trait]
pub trait HostResolver: Send + Sync + 'static {
    /// Every address `host` has now.
    ///
    /// # Errors
    /// When the name does not resolve.
    async fn lookup(&self, host: &str) -> std::io::Result<Vec<IpAddr>>;
}

/// A [`HostResolver`] in the configuration.
#[derive(Clone)]
pub struct CustomResolver(pub Arc<dyn HostResolver>);

impl fmt::Debug for CustomResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CustomResolver")
    }
}

/// The operator's egress settings.
#[derive(Debug, Clone, Default)]
pub struct EgressConfig {
    /// Blocks and sockets reachable although not public.
    pub allow: Vec<Allowed>,
    /// Every webhook goes through this proxy, which resolves and enforces.
    pub proxy: Option<url::Url>,
    /// Plain http URLs are refused.
    pub require_https: bool,
    /// Certificates trusted for https endpoints besides the system's.
    pub ca_file: Option<PathBuf>,
    /// `None`: the system resolver.
    pub resolver: Option<CustomResolver>,
}

/// Why Herald will not send to an address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("{ip} is {reason}")]
    Address { ip: IpAddr, reason: address::Denied },
    #[error("{0} is one of Herald's own listening sockets")]
    Own(SocketAddr),
    #[error("plain http is refused (WEBHOOK_REQUIRE_HTTPS)")]
    PlainHttp,
}

impl Refused {
    /// What would allow it.
    pub fn remedy(&self) -> &'static str {
        match self {
            Self::Address { .. } => {
                "only public addresses are reached unless WEBHOOK_EGRESS_ALLOW_CIDRS names them"
            }
            Self::Own(_) => "only an exact socket in WEBHOOK_EGRESS_ALLOW_CIDRS allows it",
            Self::PlainHttp => "use https",
        }
    }
}

/// The egress rules of one running server.
#[derive(Debug, Clone)]
pub struct EgressPolicy {
    allow: Vec<Allowed>,
    require_https: bool,
    proxied: bool,
    /// Herald's own listening sockets.
    own: Vec<SocketAddr>,
}

impl EgressPolicy {
    /// The rules of `config` for a server listening on `own`.
    pub fn new(config: &EgressConfig, own: Vec<SocketAddr>) -> Self {
        Self {
            allow: config.allow.clone(),
            require_https: config.require_https,
            proxied: config.proxy.is_some(),
            own,
        }
    }

    /// A proxy resolves names and enforces its rules; Herald only checks URLs.
    pub fn proxied(&self) -> bool {
        self.proxied
    }

    /// The ports Herald itself listens on.
    pub fn own_ports(&self) -> impl Iterator<Item = u16> + '_ {
        self.own.iter().map(SocketAddr::port)
    }

    /// Checks an endpoint URL at registration: plain http when https is required, and a
    /// host that is an IP literal Herald may not reach. Host names are checked when they
    /// are resolved, at every attempt.
    ///
    /// # Errors
    /// Why the URL is refused and what would allow it.
    pub fn check_url(&self, url: &url::Url) -> Result<(), Invalid> {
        self.check_literal(url)
            .map_err(|refused| Invalid(format!("{refused}; {}", refused.remedy())))
    }

    /// The URL's scheme and, when its host is an IP literal, the address.
    ///
    /// # Errors
    /// Why the URL may not be reached.
    pub fn check_literal(&self, url: &url::Url) -> Result<(), Refused> {
        if self.require_https && url.scheme() == "http" {
            return Err(Refused::PlainHttp);
        }
        match address::literal_host(url) {
            Some(ip) => self.check(ip, url.port_or_known_default()),
            None => Ok(()),
        }
    }

    /// Whether a connection to `ip` (on `port`, when known) may be made.
    ///
    /// # Errors
    /// Why not.
    pub fn check(&self, ip: IpAddr, port: Option<u16>) -> Result<(), Refused> {
        let ip = ip.to_canonical();
        if let Some(port) = port {
            let socket = SocketAddr::new(ip, port);
            if self.allow.contains(&Allowed::Socket(socket)) {
                return Ok(());
            }
            if self.is_own(socket) {
                return Err(Refused::Own(socket));
            }
        }
        let allowed = self
            .allow
            .iter()
            .any(|a| matches!(a, Allowed::Net(net) if net.contains(&ip)));
        if allowed {
            return Ok(());
        }
        address::classify(ip).map_err(|reason| Refused::Address { ip, reason })
    }

    /// Whether `socket` reaches one of Herald's listeners: the same address, or any
    /// address of this machine when a listener is bound to all of them.
    fn is_own(&self, socket: SocketAddr) -> bool {
        self.own.iter().any(|own| {
            own.port() == socket.port()
                && (own.ip().to_canonical() == socket.ip()
                    || (own.ip().is_unspecified() && is_local(socket.ip())))
        })
    }
}

/// Whether `ip` is an address of this machine: only those can be bound.
fn is_local(ip: IpAddr) -> bool {
    ip.is_loopback() || ip.is_unspecified() || UdpSocket::bind(SocketAddr::new(ip, 0)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(allow: &[&str], own: &[&str]) -> EgressPolicy {
        EgressPolicy::new(
            &EgressConfig {
                allow: allow.iter().map(|a| a.parse().unwrap()).collect(),
                ..Default::default()
            },
            own.iter().map(|s| s.parse().unwrap()).collect(),
        )
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn allow_list_entries_parse_as_blocks_addresses_or_sockets() {
        assert_eq!(
            "127.0.0.0/8".parse::<Allowed>().unwrap(),
            Allowed::Net("127.0.0.0/8".parse().unwrap())
        );
        // Host bits are dropped; a bare address is a block of one.
        assert_eq!(
            "10.1.2.3/8".parse::<Allowed>().unwrap(),
            Allowed::Net("10.0.0.0/8".parse().unwrap())
        );
        assert_eq!(
            "::ffff:10.0.0.1".parse::<Allowed>().unwrap(),
            Allowed::Net("10.0.0.1/32".parse().unwrap())
        );
        assert_eq!(
            "[::1]:9464".parse::<Allowed>().unwrap(),
            Allowed::Socket("[::1]:9464".parse().unwrap())
        );
        let e = "localhost".parse::<Allowed>().unwrap_err();
        assert!(e.contains("neither a CIDR block"), "{e}");
        assert!("10.0.0.0/33".parse::<Allowed>().is_err());
    }

    #[test]
    fn only_public_addresses_pass_unless_allowed() {
        let p = policy(&[], &[]);
        assert!(p.check(ip("8.8.8.8"), Some(443)).is_ok());
        assert!(matches!(
            p.check(ip("127.0.0.1"), Some(80)),
            Err(Refused::Address { .. })
        ));
        let p = policy(&["127.0.0.0/8", "10.9.0.0/16"], &[]);
        assert!(p.check(ip("127.0.0.1"), Some(80)).is_ok());
        assert!(p.check(ip("10.9.3.4"), None).is_ok());
        assert!(p.check(ip("10.8.3.4"), None).is_err());
        // The kernel connects a mapped address as the IPv4 address: so is it allowed.
        assert!(p.check(ip("::ffff:127.0.0.1"), Some(80)).is_ok());
        assert!(p.check(ip("::1"), Some(80)).is_err());
    }

    #[test]
    fn own_sockets_need_an_exact_entry() {
        let p = policy(&["127.0.0.0/8"], &["127.0.0.1:50051", "0.0.0.0:9464"]);
        assert_eq!(
            p.check(ip("127.0.0.1"), Some(50051)),
            Err(Refused::Own("127.0.0.1:50051".parse().unwrap()))
        );
        // Another loopback address does not reach a listener bound to 127.0.0.1.
        assert!(p.check(ip("127.0.0.2"), Some(50051)).is_ok());
        // A listener on every address is reached through any local one.
        assert!(p.check(ip("127.0.0.2"), Some(9464)).is_err());
        assert!(p.check(ip("::ffff:127.0.0.1"), Some(9464)).is_err());
        assert!(p.check(ip("127.0.0.1"), Some(8080)).is_ok());
        let p = policy(
            &["127.0.0.0/8", "127.0.0.1:9464"],
            &["127.0.0.1:50051", "127.0.0.1:9464"],
        );
        assert!(p.check(ip("127.0.0.1"), Some(9464)).is_ok());
        assert!(p.check(ip("127.0.0.1"), Some(50051)).is_err());
    }

    #[test]
    fn urls_with_literal_hosts_are_checked_and_say_what_would_allow_them() {
        let p = policy(&[], &[]);
        let url = |s: &str| url::Url::parse(s).unwrap();
        assert!(p.check_url(&url("https://example.com/hook")).is_ok());
        assert!(p.check_url(&url("http://localhost:8080/")).is_ok());
        let Invalid(why) = p.check_url(&url("http://2130706433/")).unwrap_err();
        assert!(why.contains("127.0.0.1"), "{why}");
        assert!(why.contains("WEBHOOK_EGRESS_ALLOW_CIDRS"), "{why}");
        let strict = EgressPolicy::new(
            &EgressConfig {
                require_https: true,
                ..Default::default()
            },
            Vec::new(),
        );
        let Invalid(why) = strict.check_url(&url("http://example.com/")).unwrap_err();
        assert!(why.contains("WEBHOOK_REQUIRE_HTTPS"), "{why}");
        assert!(strict.check_url(&url("https://example.com/")).is_ok());
    }
}
