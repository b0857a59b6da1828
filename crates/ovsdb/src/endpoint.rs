//! OVSDB connection targets, spelled the way OVS spells them (`ovs-vsctl --db=…`):
//! `unix:PATH`, `tcp:HOST:PORT`, `tcp:[IPV6]:PORT`.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// The port OVSDB listens on by default (IANA-assigned), used when a `tcp:` target has none.
pub const DEFAULT_OVSDB_PORT: u16 = 6640;

/// Where to connect.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// A unix-domain stream socket, e.g. `unix:/run/openvswitch/db.sock`.
    Unix(PathBuf),
    /// A TCP socket. `host` is an IP address or a name to resolve; IPv6 addresses are stored
    /// without brackets.
    Tcp {
        /// The host.
        host: String,
        /// The port.
        port: u16,
    },
}

/// The endpoint string is not one this client can connect to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid OVSDB endpoint {endpoint:?}: {reason}")]
pub struct EndpointError {
    /// The string as given.
    pub endpoint: String,
    /// What is wrong with it.
    pub reason: String,
}

impl Endpoint {
    /// The default Open vSwitch database socket of a packaged OVS.
    pub fn default_vswitch() -> Endpoint {
        Endpoint::Unix(PathBuf::from("/run/openvswitch/db.sock"))
    }

    /// True when traffic to this endpoint cannot leave the host: a unix socket, or TCP to a
    /// loopback address (`127.0.0.0/8`, `::1`, `::ffff:127.x.y.z`) or to `localhost` (which
    /// resolves only to loopback addresses, RFC 6761). Any other host name is not local: it
    /// could resolve anywhere. This client speaks no TLS, so anything else goes in clear
    /// text.
    pub fn is_local(&self) -> bool {
        match self {
            Endpoint::Unix(_) => true,
            Endpoint::Tcp { host, .. } => match host.parse::<std::net::IpAddr>() {
                Ok(std::net::IpAddr::V4(v4)) => v4.is_loopback(),
                Ok(std::net::IpAddr::V6(v6)) => {
                    v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
                }
                Err(_) => {
                    let name = host.strip_suffix('.').unwrap_or(host);
                    name.eq_ignore_ascii_case("localhost")
                        || name.to_ascii_lowercase().ends_with(".localhost")
                }
            },
        }
    }
}

impl FromStr for Endpoint {
    type Err = EndpointError;

    fn from_str(s: &str) -> Result<Self, EndpointError> {
        let fail = |reason: &str| EndpointError {
            endpoint: s.to_owned(),
            reason: reason.to_owned(),
        };
        let Some((scheme, rest)) = s.split_once(':') else {
            return Err(fail("expected unix:PATH or tcp:HOST[:PORT]"));
        };
        match scheme {
            "unix" => {
                if rest.is_empty() {
                    return Err(fail("unix: needs a socket path"));
                }
                Ok(Endpoint::Unix(PathBuf::from(rest)))
            }
            "tcp" => {
                let (host, port) = if let Some(bracketed) = rest.strip_prefix('[') {
                    let Some((host, after)) = bracketed.split_once(']') else {
                        return Err(fail("unterminated [ in IPv6 address"));
                    };
                    let port = match after {
                        "" => None,
                        p => Some(
                            p.strip_prefix(':')
                                .ok_or_else(|| fail("expected :PORT after ]"))?,
                        ),
                    };
                    (host, port)
                } else {
                    match rest.split_once(':') {
                        Some((host, port)) if !port.contains(':') => (host, Some(port)),
                        Some(_) => {
                            return Err(fail("IPv6 addresses must be written in brackets"));
                        }
                        None => (rest, None),
                    }
                };
                if host.is_empty() {
                    return Err(fail("tcp: needs a host"));
                }
                let port = match port {
                    None => DEFAULT_OVSDB_PORT,
                    Some(p) => p
                        .parse::<u16>()
                        .ok()
                        .filter(|p| *p != 0)
                        .ok_or_else(|| fail("port must be a number from 1 to 65535"))?,
                };
                Ok(Endpoint::Tcp {
                    host: host.to_owned(),
                    port,
                })
            }
            "ssl" => Err(fail("ssl: endpoints are not supported by this client")),
            "punix" | "ptcp" | "pssl" => Err(fail(
                "this is a listening (passive) endpoint; a client needs unix: or tcp:",
            )),
            _ => Err(fail(
                "unknown scheme; expected unix:PATH or tcp:HOST[:PORT]",
            )),
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Unix(path) => write!(f, "unix:{}", path.display()),
            Endpoint::Tcp { host, port } if host.contains(':') => write!(f, "tcp:[{host}]:{port}"),
            Endpoint::Tcp { host, port } => write!(f, "tcp:{host}:{port}"),
        }
    }
}

impl TryFrom<&str> for Endpoint {
    type Error = EndpointError;
    fn try_from(s: &str) -> Result<Self, EndpointError> {
        s.parse()
    }
}

impl TryFrom<String> for Endpoint {
    type Error = EndpointError;
    fn try_from(s: String) -> Result<Self, EndpointError> {
        s.parse()
    }
}

impl TryFrom<&String> for Endpoint {
    type Error = EndpointError;
    fn try_from(s: &String) -> Result<Self, EndpointError> {
        s.parse()
    }
}

/// Anything that names an endpoint: an [`Endpoint`] or a string to parse as one.
pub trait IntoEndpoint {
    /// Converts, parsing if needed.
    fn into_endpoint(self) -> Result<Endpoint, EndpointError>;
}

impl IntoEndpoint for Endpoint {
    fn into_endpoint(self) -> Result<Endpoint, EndpointError> {
        Ok(self)
    }
}

impl IntoEndpoint for &Endpoint {
    fn into_endpoint(self) -> Result<Endpoint, EndpointError> {
        Ok(self.clone())
    }
}

impl IntoEndpoint for &str {
    fn into_endpoint(self) -> Result<Endpoint, EndpointError> {
        self.parse()
    }
}

impl IntoEndpoint for String {
    fn into_endpoint(self) -> Result<Endpoint, EndpointError> {
        self.parse()
    }
}

impl IntoEndpoint for &String {
    fn into_endpoint(self) -> Result<Endpoint, EndpointError> {
        self.parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_ovs_accepts() {
        assert_eq!(
            "unix:/run/openvswitch/db.sock".parse::<Endpoint>().unwrap(),
            Endpoint::Unix("/run/openvswitch/db.sock".into())
        );
        assert_eq!(
            "tcp:127.0.0.1:6641".parse::<Endpoint>().unwrap(),
            Endpoint::Tcp {
                host: "127.0.0.1".into(),
                port: 6641
            }
        );
        assert_eq!(
            "tcp:127.0.0.1".parse::<Endpoint>().unwrap(),
            Endpoint::Tcp {
                host: "127.0.0.1".into(),
                port: 6640
            }
        );
        let v6: Endpoint = "tcp:[::1]:6640".parse().unwrap();
        assert_eq!(
            v6,
            Endpoint::Tcp {
                host: "::1".into(),
                port: 6640
            }
        );
        assert_eq!(v6.to_string(), "tcp:[::1]:6640");
        assert_eq!("tcp:[::1]".parse::<Endpoint>().unwrap(), v6);
    }

    #[test]
    fn local_means_a_unix_socket_or_loopback() {
        for local in [
            "unix:/run/openvswitch/db.sock",
            "tcp:127.0.0.1:6640",
            "tcp:127.8.9.1",
            "tcp:[::1]:6640",
            "tcp:[::ffff:127.0.0.1]:6640",
            "tcp:localhost:6640",
            "tcp:LOCALHOST.",
            "tcp:ovsdb.localhost",
        ] {
            assert!(local.parse::<Endpoint>().unwrap().is_local(), "{local}");
        }
        for remote in [
            "tcp:192.0.2.1:6640",
            "tcp:10.0.0.1",
            "tcp:0.0.0.0",
            "tcp:[::]:6640",
            "tcp:[2001:db8::1]:6640",
            "tcp:[::ffff:192.0.2.1]:6640",
            "tcp:ovsdb.example.net",
            "tcp:localhost.example.net",
        ] {
            assert!(!remote.parse::<Endpoint>().unwrap().is_local(), "{remote}");
        }
    }

    #[test]
    fn rejects_what_it_cannot_connect_to() {
        for bad in [
            "",
            "/run/openvswitch/db.sock",
            "unix:",
            "tcp:",
            "tcp::6640",
            "tcp:1.2.3.4:0",
            "tcp:1.2.3.4:99999",
            "tcp:1.2.3.4:x",
            "tcp:::1:6640",
            "tcp:[::1",
            "tcp:[::1]6640",
            "ssl:1.2.3.4:6640",
            "punix:/tmp/x",
            "ptcp:6640",
            "http://x",
        ] {
            let err = bad.parse::<Endpoint>().unwrap_err();
            assert_eq!(err.endpoint, bad);
        }
    }
}
