//! Where a webhook may go: `https://` (or `http://` when allowed), and only
//! to public addresses unless private ones are allowed. Checked when an
//! endpoint is made or changed, and again before every delivery on the
//! addresses the name resolves to then, which the delivery must use.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    time::Duration,
};

use url::Url;

/// The longest URL an endpoint may have.
pub const MAX_URL_CHARS: usize = 2_000;
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// `WEBHOOK_ALLOW_HTTP`, `WEBHOOK_ALLOW_PRIVATE` (development and tests).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DestinationRules {
    pub allow_http: bool,
    pub allow_private: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("must be an absolute URL of at most {MAX_URL_CHARS} characters")]
    Malformed,
    #[error("must use https")]
    NotHttps,
    #[error("must not carry a user name or password")]
    Credentials,
    #[error("{0} did not resolve")]
    Unresolved(String),
    #[error("{host} leads to {address}, which is not a public address")]
    NotPublic { host: String, address: IpAddr },
}

/// A checked URL: its scheme, host and port are allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    url: Url,
}

impl Destination {
    /// The URL's own rules (scheme, no credentials, a host); an address
    /// written in it must be public too. Names are resolved by [`Self::resolve`].
    pub fn parse(text: &str, rules: DestinationRules) -> Result<Self, Refused> {
        if text.chars().count() > MAX_URL_CHARS {
            return Err(Refused::Malformed);
        }
        let url = Url::parse(text).map_err(|_| Refused::Malformed)?;
        match url.scheme() {
            "https" => {}
            "http" if rules.allow_http => {}
            _ => return Err(Refused::NotHttps),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Refused::Credentials);
        }
        let host = url.host().ok_or(Refused::Malformed)?;
        let literal = match host {
            url::Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
            url::Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
            url::Host::Domain(_) => None,
        };
        let destination = Self { url };
        if let Some(address) = literal {
            destination.allowed(address, rules)?;
        }
        Ok(destination)
    }

    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The addresses to connect to, each allowed: every address the name
    /// resolves to now must be, or a later answer could pick a refused one.
    pub async fn resolve(&self, rules: DestinationRules) -> Result<Vec<SocketAddr>, Refused> {
        let host = self.url.host_str().ok_or(Refused::Malformed)?.to_owned();
        let port = self.url.port_or_known_default().ok_or(Refused::Malformed)?;
        let lookup = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let resolved = tokio::time::timeout(
            RESOLVE_TIMEOUT,
            tokio::net::lookup_host((lookup.as_str(), port)),
        )
        .await
        .map_err(|_| Refused::Unresolved(host.clone()))?
        .map_err(|_| Refused::Unresolved(host.clone()))?;
        let addresses: Vec<SocketAddr> = resolved.collect();
        if addresses.is_empty() {
            return Err(Refused::Unresolved(host));
        }
        for address in &addresses {
            self.allowed(address.ip(), rules)?;
        }
        Ok(addresses)
    }

    fn allowed(&self, address: IpAddr, rules: DestinationRules) -> Result<(), Refused> {
        if rules.allow_private || is_public(address) {
            Ok(())
        } else {
            Err(Refused::NotPublic {
                host: self.url.host_str().unwrap_or_default().to_owned(),
                address,
            })
        }
    }
}

/// Whether an address is on the public internet: not loopback, private,
/// shared (CGNAT), link-local (cloud metadata lives at 169.254.169.254),
/// multicast, unspecified, broadcast, documentation or reserved.
pub fn is_public(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(ip) => is_public_v4(ip),
        IpAddr::V6(ip) => match ip.to_ipv4_mapped() {
            Some(mapped) => is_public_v4(mapped),
            None => is_public_v6(ip),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (18..20).contains(&b))
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        // Unique local fc00::/7, link-local fe80::/10, site-local fec0::/10.
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
        || (first & 0xffc0) == 0xfec0
        // Documentation 2001:db8::/32; NAT64 64:ff9b::/96 can reach IPv4 inside.
        || (first == 0x2001 && ip.segments()[1] == 0x0db8)
        || (first == 0x0064 && ip.segments()[1] == 0xff9b))
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRICT: DestinationRules = DestinationRules {
        allow_http: false,
        allow_private: false,
    };

    #[test]
    fn only_public_https_urls_pass() {
        assert!(Destination::parse("https://hooks.example.com/in?x=1", STRICT).is_ok());
        assert!(Destination::parse("https://93.184.215.14:8443/", STRICT).is_ok());
        for (url, refused) in [
            ("http://hooks.example.com/", Refused::NotHttps),
            ("ftp://hooks.example.com/", Refused::NotHttps),
            ("https://user:pw@hooks.example.com/", Refused::Credentials),
            ("hooks.example.com/in", Refused::Malformed),
            ("https://", Refused::Malformed),
        ] {
            assert_eq!(Destination::parse(url, STRICT), Err(refused), "{url}");
        }
        for url in [
            "https://127.0.0.1/",
            "https://127.1/",
            "https://2130706433/",
            "https://10.1.2.3/",
            "https://172.16.0.1/",
            "https://192.168.1.1/",
            "https://169.254.169.254/latest/meta-data/",
            "https://100.64.0.1/",
            "https://0.0.0.0/",
            "https://224.0.0.1/",
            "https://[::1]/",
            "https://[::ffff:127.0.0.1]/",
            "https://[fd00::1]/",
            "https://[fe80::1]/",
        ] {
            assert!(
                matches!(
                    Destination::parse(url, STRICT),
                    Err(Refused::NotPublic { .. })
                ),
                "{url}"
            );
        }
        let open = DestinationRules {
            allow_http: true,
            allow_private: true,
        };
        assert!(Destination::parse("http://127.0.0.1:8080/hook", open).is_ok());
    }

    #[tokio::test]
    async fn a_name_is_judged_by_what_it_resolves_to() {
        let local = Destination::parse("https://localhost:9/hook", STRICT).unwrap();
        assert!(matches!(
            local.resolve(STRICT).await,
            Err(Refused::NotPublic { .. })
        ));
        let allowed = DestinationRules {
            allow_http: false,
            allow_private: true,
        };
        let addresses = local.resolve(allowed).await.unwrap();
        assert!(
            addresses
                .iter()
                .all(|a| a.ip().is_loopback() && a.port() == 9)
        );
    }
}
