//! Monitor replica addresses, `HOST:PORT`, as `--monitor` takes them and the configuration
//! gives them.
//!
//! A host is a name or an IPv4 address, or an IPv6 address in brackets (`[::1]:9988`); the
//! port is required, so that a typo never silently means "port 9988". An error names the
//! address as it was typed.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

/// Where one monitor replica listens.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Address {
    /// A host name, an IPv4 address, or an IPv6 address with its brackets.
    host: String,
    /// The TCP port.
    port: u16,
}

/// An address that is not `HOST:PORT`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid monitor address '{address}': {why}")]
pub struct AddressError {
    /// The address as it was typed.
    pub address: String,
    /// What is wrong with it.
    pub why: &'static str,
}

impl Address {
    /// The host part (IPv6 addresses keep their brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of `path` on this replica's HTTP API (`scheme` is `http` or `https`).
    pub fn url(&self, scheme: &str, path: &str) -> String {
        format!("{scheme}://{}:{}{path}", self.host, self.port)
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

impl From<SocketAddr> for Address {
    fn from(addr: SocketAddr) -> Self {
        let host = match addr {
            SocketAddr::V4(v4) => v4.ip().to_string(),
            SocketAddr::V6(v6) => format!("[{}]", v6.ip()),
        };
        Address {
            host,
            port: addr.port(),
        }
    }
}

impl FromStr for Address {
    type Err = AddressError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |why| AddressError {
            address: s.to_string(),
            why,
        };
        let (host, port) = s
            .rsplit_once(':')
            .ok_or_else(|| bad("expected HOST:PORT"))?;
        if host.is_empty() {
            return Err(bad("the host is missing; expected HOST:PORT"));
        }
        let port: u16 = port
            .parse()
            .map_err(|_| bad("the port must be a number from 1 to 65535"))?;
        if port == 0 {
            return Err(bad("the port must be a number from 1 to 65535"));
        }
        if let Some(inner) = host.strip_prefix('[') {
            let v6 = inner
                .strip_suffix(']')
                .ok_or_else(|| bad("an IPv6 address needs its closing ']'"))?;
            if v6.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(bad("not an IPv6 address between '[' and ']'"));
            }
        } else if host.contains(':') {
            return Err(bad("write an IPv6 address in brackets, e.g. [::1]:9988"));
        } else if !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        {
            return Err(bad(
                "the host may hold letters, digits, '.', '-' and '_' only",
            ));
        }
        Ok(Address {
            host: host.to_string(),
            port,
        })
    }
}

/// The replicas named by `--monitor`: addresses separated by commas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressList(pub Vec<Address>);

impl FromStr for AddressList {
    type Err = AddressError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let list = s
            .split(',')
            .map(|item| {
                let item = item.trim();
                if item.is_empty() {
                    Err(AddressError {
                        address: s.to_string(),
                        why: "an address in the list is empty",
                    })
                } else {
                    item.parse()
                }
            })
            .collect::<Result<Vec<Address>, AddressError>>()?;
        Ok(AddressList(list))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<String, String> {
        s.parse::<Address>()
            .map(|a| a.to_string())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn names_ipv4_and_bracketed_ipv6_addresses_parse() {
        assert_eq!(parse("mon1:9988"), Ok("mon1:9988".into()));
        assert_eq!(parse("10.0.0.21:9990"), Ok("10.0.0.21:9990".into()));
        assert_eq!(parse("[::1]:9988"), Ok("[::1]:9988".into()));
        assert_eq!(parse("mon-1.example_x:1"), Ok("mon-1.example_x:1".into()));
    }

    #[test]
    fn an_address_without_port_is_refused_and_named() {
        assert_eq!(
            parse("mon1"),
            Err("invalid monitor address 'mon1': expected HOST:PORT".into())
        );
        assert_eq!(
            parse(":9988"),
            Err("invalid monitor address ':9988': the host is missing; expected HOST:PORT".into())
        );
    }

    #[test]
    fn bad_ports_are_refused() {
        for bad in ["mon1:", "mon1:0", "mon1:65536", "mon1:x"] {
            assert_eq!(
                parse(bad),
                Err(format!(
                    "invalid monitor address '{bad}': the port must be a number from 1 to 65535"
                ))
            );
        }
    }

    #[test]
    fn ipv6_needs_brackets() {
        assert_eq!(
            parse("::1:9988"),
            Err(
                "invalid monitor address '::1:9988': write an IPv6 address in brackets, e.g. [::1]:9988"
                    .into()
            )
        );
        assert!(parse("[::1:9988").is_err());
        assert!(parse("[nope]:9988").is_err());
    }

    #[test]
    fn hosts_with_url_characters_are_refused() {
        assert!(parse("mon1/x:9988").is_err());
        assert!(parse("user@mon1:9988").is_err());
    }

    #[test]
    fn lists_are_split_on_commas_and_trimmed() -> Result<(), AddressError> {
        let list: AddressList = "a:1, b:2,[::1]:3".parse()?;
        let shown: Vec<String> = list.0.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["a:1", "b:2", "[::1]:3"]);
        Ok(())
    }

    #[test]
    fn a_list_error_names_the_bad_address() {
        let err = "a:1,b,c:3"
            .parse::<AddressList>()
            .map_err(|e| e.to_string());
        assert_eq!(
            err,
            Err("invalid monitor address 'b': expected HOST:PORT".into())
        );
        let err = "a:1,,c:3".parse::<AddressList>().map_err(|e| e.to_string());
        assert_eq!(
            err,
            Err("invalid monitor address 'a:1,,c:3': an address in the list is empty".into())
        );
    }

    #[test]
    fn socket_addresses_convert_with_brackets_for_ipv6() -> Result<(), std::net::AddrParseError> {
        let v4: SocketAddr = "127.0.0.1:9988".parse()?;
        assert_eq!(
            Address::from(v4).url("http", "/healthz"),
            "http://127.0.0.1:9988/healthz"
        );
        let v6: SocketAddr = "[::1]:9988".parse()?;
        assert_eq!(Address::from(v6).to_string(), "[::1]:9988");
        Ok(())
    }
}
