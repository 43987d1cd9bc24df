//! The real [`Vips`]: VIPs as `/32` addresses on the cluster interface, managed over rtnetlink
//! (no `ip` commands), and announced with gratuitous ARP ([`crate::arp`]) when added.
//!
//! The netlink socket belongs to the network namespace of the thread that called
//! [`NetlinkVips::new`]; the ARP socket to that of the thread polling [`Vips::add`]. In the
//! daemon both are the host's.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Mutex;

use futures::TryStreamExt;
use rtnetlink::packet_route::address::{AddressAttribute, AddressMessage};
use rtnetlink::packet_route::link::LinkAttribute;
use tokio::task::AbortHandle;
use tracing::{debug, info, warn};

use crate::arp::{self, ArpConfig};
use crate::ops::{VipError, Vips};

/// Linux's `IFNAMSIZ - 1`: no interface name is longer.
const MAX_INTERFACE_NAME: usize = 15;

/// VIPs on one interface, through an rtnetlink connection driven by a task on the tokio runtime
/// that created it (the task is stopped when this is dropped).
#[derive(Debug)]
pub struct NetlinkVips {
    interface: String,
    handle: rtnetlink::Handle,
    connection: AbortHandle,
    arp: ArpConfig,
    /// VIPs added whose gratuitous ARP burst failed: the next `add` announces them again,
    /// since the LAN may still send their traffic to the previous holder.
    unannounced: Mutex<BTreeSet<Ipv4Addr>>,
}

/// What a VIP operation needs to know about the interface, looked up afresh every time so that
/// a re-created interface (new index, new MAC) is followed.
struct Link {
    index: u32,
    mac: Option<[u8; 6]>,
}

/// One address on the interface.
struct Address {
    ip: IpAddr,
    prefix_len: u8,
    message: AddressMessage,
}

impl NetlinkVips {
    /// Opens a netlink connection in the calling thread's network namespace, spawns its driver on
    /// the current tokio runtime and checks that `interface` exists ([`VipError::NoInterface`]
    /// if not). Gratuitous ARP bursts use [`ArpConfig::default`]; see [`NetlinkVips::with_arp`].
    ///
    /// Must be called from within a tokio runtime.
    pub async fn new(interface: &str) -> Result<Self, VipError> {
        let (connection, handle, _) = rtnetlink::new_connection().map_err(|e| {
            VipError::Netlink(format!(
                "opening a netlink socket for interface '{interface}': {e}"
            ))
        })?;
        let connection = tokio::spawn(connection).abort_handle();
        let vips = NetlinkVips {
            interface: interface.to_owned(),
            handle,
            connection,
            arp: ArpConfig::default(),
            unannounced: Mutex::new(BTreeSet::new()),
        };
        let link = vips.link().await?;
        debug!(
            interface,
            index = link.index,
            "netlink connection open for the VIP interface"
        );
        Ok(vips)
    }

    /// Uses `arp` for the gratuitous ARP bursts sent by [`Vips::add`].
    pub fn with_arp(mut self, arp: ArpConfig) -> Self {
        self.arp = arp;
        self
    }

    /// The interface's name.
    pub fn interface(&self) -> &str {
        &self.interface
    }

    /// Looks the interface up by name: its index and MAC.
    async fn link(&self) -> Result<Link, VipError> {
        if self.interface.is_empty() || self.interface.len() > MAX_INTERFACE_NAME {
            // No such name can exist; the kernel would answer EINVAL rather than ENODEV.
            return Err(VipError::NoInterface(self.interface.clone()));
        }
        let mut links = self
            .handle
            .link()
            .get()
            .match_name(self.interface.clone())
            .execute();
        let message = match links.try_next().await {
            Ok(Some(message)) => message,
            Ok(None) => return Err(VipError::NoInterface(self.interface.clone())),
            Err(e) if errno(&e) == Some(libc::ENODEV) => {
                return Err(VipError::NoInterface(self.interface.clone()))
            }
            Err(e) => {
                return Err(VipError::Netlink(format!(
                    "looking up interface '{}': {}",
                    self.interface,
                    describe(&e)
                )))
            }
        };
        let mac = message
            .attributes
            .iter()
            .find_map(|attribute| match attribute {
                LinkAttribute::Address(bytes) => <[u8; 6]>::try_from(bytes.as_slice()).ok(),
                _ => None,
            });
        Ok(Link {
            index: message.header.index,
            mac,
        })
    }

    /// Sends a gratuitous ARP burst for `ip` from `link`, and remembers whether it went out.
    async fn announce(&self, link: &Link, ip: Ipv4Addr) -> Result<(), VipError> {
        let sent = match link.mac {
            Some(mac) => arp::announce(link.index, mac, ip, &self.arp)
                .await
                .map_err(|e| e.to_string()),
            None => Err("the interface has no Ethernet address".to_owned()),
        };
        self.set_unannounced(ip, sent.is_err());
        sent.map_err(|reason| VipError::Arp {
            ip: ip.into(),
            interface: self.interface.clone(),
            reason,
        })?;
        debug!(
            %ip,
            interface = %self.interface,
            rounds = self.arp.count,
            interval = ?self.arp.interval,
            "gratuitous ARP burst sent"
        );
        Ok(())
    }

    fn is_unannounced(&self, ip: Ipv4Addr) -> bool {
        self.unannounced
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(&ip)
    }

    fn set_unannounced(&self, ip: Ipv4Addr, pending: bool) {
        let mut set = self
            .unannounced
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if pending {
            set.insert(ip);
        } else {
            set.remove(&ip);
        }
    }

    /// Every address on interface `index`.
    async fn addresses(&self, index: u32, op: &str) -> Result<Vec<Address>, VipError> {
        let messages: Vec<AddressMessage> = self
            .handle
            .address()
            .get()
            .set_link_index_filter(index)
            .execute()
            .try_collect()
            .await
            .map_err(|e| {
                VipError::Netlink(format!(
                    "{op}: listing the addresses of interface '{}': {}",
                    self.interface,
                    describe(&e)
                ))
            })?;
        Ok(messages
            .into_iter()
            .filter_map(|message| {
                address_of(&message).map(|ip| Address {
                    ip,
                    prefix_len: message.header.prefix_len,
                    message,
                })
            })
            .collect())
    }
}

impl Drop for NetlinkVips {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

impl Vips for NetlinkVips {
    /// Every address on the interface, IPv4 and IPv6, whatever its prefix length.
    async fn configured(&self) -> Result<Vec<IpAddr>, VipError> {
        let link = self.link().await?;
        let addresses = self.addresses(link.index, "listing VIPs").await?;
        Ok(addresses.into_iter().map(|address| address.ip).collect())
    }

    /// Adds `ip/32` unless `ip` is already on the interface (with any prefix length: then
    /// `Ok(false)`), then sends a gratuitous ARP burst. If the burst fails the address stays on
    /// the interface, [`VipError::Arp`] is returned, and every later `add` of that VIP sends
    /// the burst again until one goes out (still answering `Ok(false)`: it was there already).
    /// An address already there and announced sends nothing.
    async fn add(&self, ip: IpAddr) -> Result<bool, VipError> {
        let v4 = ipv4(ip)?;
        let link = self.link().await?;
        let op = format!("adding {ip}/32 to '{}'", self.interface);
        let present = self.addresses(link.index, &op).await?;
        if present.iter().any(|address| address.ip == ip) {
            if self.is_unannounced(v4) {
                self.announce(&link, v4).await?;
                info!(%ip, interface = %self.interface, "gratuitous ARP sent for the VIP after an earlier failure");
            } else {
                debug!(%ip, interface = %self.interface, "VIP already on the interface");
            }
            return Ok(false);
        }
        match self
            .handle
            .address()
            .add(link.index, ip, 32)
            .execute()
            .await
        {
            Ok(()) => {}
            Err(e) if errno(&e) == Some(libc::EEXIST) => {
                debug!(%ip, interface = %self.interface, "VIP appeared on the interface meanwhile");
                return Ok(false);
            }
            Err(e) => return Err(VipError::Netlink(format!("{op}: {}", describe(&e)))),
        }
        debug!(%ip, interface = %self.interface, "VIP added to the interface");
        if let Err(e) = self.announce(&link, v4).await {
            warn!(%ip, interface = %self.interface, error = %e, "the VIP is on the interface but its gratuitous ARP failed; it is sent again on the next check");
            return Err(e);
        }
        Ok(true)
    }

    /// Deletes `ip/32` if it is there. The same address with another prefix length (say, the
    /// host's own `/24`) is not a VIP and is left alone (`Ok(false)`).
    async fn remove(&self, ip: IpAddr) -> Result<bool, VipError> {
        let v4 = ipv4(ip)?;
        let link = self.link().await?;
        let op = format!("removing {ip}/32 from '{}'", self.interface);
        let present = self.addresses(link.index, &op).await?;
        let Some(vip) = present
            .into_iter()
            .find(|address| address.ip == ip && address.prefix_len == 32)
        else {
            debug!(%ip, interface = %self.interface, "no such VIP (/32) on the interface");
            return Ok(false);
        };
        let deleted = self.handle.address().del(vip.message).execute().await;
        self.set_unannounced(v4, false);
        match deleted {
            Ok(()) => {
                debug!(%ip, interface = %self.interface, "VIP removed from the interface");
                Ok(true)
            }
            Err(e) if errno(&e) == Some(libc::EADDRNOTAVAIL) => {
                debug!(%ip, interface = %self.interface, "VIP left the interface meanwhile");
                Ok(false)
            }
            Err(e) => Err(VipError::Netlink(format!("{op}: {}", describe(&e)))),
        }
    }
}

/// `ip` as IPv4, or [`VipError::NotIpv4`].
fn ipv4(ip: IpAddr) -> Result<Ipv4Addr, VipError> {
    match ip {
        IpAddr::V4(v4) => Ok(v4),
        IpAddr::V6(_) => Err(VipError::NotIpv4(ip)),
    }
}

/// The address of an `RTM_NEWADDR` message: `IFA_LOCAL` (the interface's own address; differs
/// from `IFA_ADDRESS` on point-to-point links), else `IFA_ADDRESS` (IPv6 usually has only that).
fn address_of(message: &AddressMessage) -> Option<IpAddr> {
    let local = message.attributes.iter().find_map(|a| match a {
        AddressAttribute::Local(ip) => Some(*ip),
        _ => None,
    });
    local.or_else(|| {
        message.attributes.iter().find_map(|a| match a {
            AddressAttribute::Address(ip) => Some(*ip),
            _ => None,
        })
    })
}

/// The errno of a netlink error answer, if that is what `error` is.
fn errno(error: &rtnetlink::Error) -> Option<i32> {
    match error {
        rtnetlink::Error::NetlinkError(message) => Some(message.raw_code().abs()),
        _ => None,
    }
}

/// A short description of a netlink failure: the system error for an error answer.
fn describe(error: &rtnetlink::Error) -> String {
    match error {
        rtnetlink::Error::NetlinkError(message) => message.to_io().to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv6Addr;

    fn message(attributes: Vec<AddressAttribute>) -> AddressMessage {
        let mut message = AddressMessage::default();
        message.attributes = attributes;
        message
    }

    #[test]
    fn the_local_address_wins_over_the_peer_address() {
        let local = IpAddr::V4(Ipv4Addr::new(10, 213, 0, 1));
        let peer = IpAddr::V4(Ipv4Addr::new(10, 213, 0, 2));
        let m = message(vec![
            AddressAttribute::Address(peer),
            AddressAttribute::Local(local),
        ]);
        assert_eq!(address_of(&m), Some(local));
    }

    #[test]
    fn ipv6_addresses_have_only_ifa_address() {
        let ip = IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1));
        let m = message(vec![AddressAttribute::Address(ip)]);
        assert_eq!(address_of(&m), Some(ip));
    }

    #[test]
    fn a_message_without_address_is_skipped() {
        let m = message(vec![AddressAttribute::Label("eth0".to_owned())]);
        assert_eq!(address_of(&m), None);
    }

    #[test]
    fn only_ipv4_is_accepted() {
        let v6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
        assert!(matches!(ipv4(v6), Err(VipError::NotIpv4(ip)) if ip == v6));
        assert_eq!(
            ipv4(IpAddr::V4(Ipv4Addr::LOCALHOST)).ok(),
            Some(Ipv4Addr::LOCALHOST)
        );
    }
}
