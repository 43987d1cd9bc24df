//! Gratuitous ARP: after a VIP is put on an interface, the agent tells the LAN which MAC now
//! answers for it, so that clients and routers holding the old holder's MAC switch at once
//! instead of waiting for their neighbour entries to expire.
//!
//! As MMM did, a burst is several rounds of one broadcast ARP request and one broadcast ARP
//! reply, each with sender IP = target IP = the VIP and sender MAC = the interface's MAC. The
//! frames are built by [`gratuitous_frame`] (pure) and sent from an `AF_PACKET` raw socket
//! ([`PacketSocket`]); [`announce`] sends a burst without blocking the async runtime.

use std::fmt;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

/// The Ethernet broadcast address, destination of every frame of a burst.
pub const BROADCAST: [u8; 6] = [0xff; 6];

/// EtherType of ARP.
pub const ETHERTYPE_ARP: u16 = 0x0806;

/// Length of a gratuitous ARP frame: the 14-byte Ethernet header and the 28-byte ARP packet,
/// padded with zeros to Ethernet's 60-byte minimum (without the FCS, which the NIC appends).
pub const FRAME_LEN: usize = 60;

/// The ARP operation of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArpOp {
    /// `ARPOP_REQUEST` (1).
    Request,
    /// `ARPOP_REPLY` (2).
    Reply,
}

impl ArpOp {
    /// The operation code on the wire.
    pub fn code(self) -> u16 {
        match self {
            ArpOp::Request => 1,
            ArpOp::Reply => 2,
        }
    }
}

impl fmt::Display for ArpOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ArpOp::Request => "request",
            ArpOp::Reply => "reply",
        })
    }
}

/// How many rounds a burst has and how far apart they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpConfig {
    /// Rounds of one request and one reply (MMM sent 5). Zero sends nothing.
    pub count: u32,
    /// The pause between two rounds.
    pub interval: Duration,
}

impl Default for ArpConfig {
    /// 5 rounds, 50 ms apart.
    fn default() -> Self {
        ArpConfig {
            count: 5,
            interval: Duration::from_millis(50),
        }
    }
}

/// Sending a gratuitous ARP burst failed.
#[derive(Debug, thiserror::Error)]
pub enum ArpError {
    /// The `AF_PACKET` socket could not be opened.
    #[error("cannot open an AF_PACKET raw socket (CAP_NET_RAW is needed): {cause}")]
    Socket {
        /// The system error.
        cause: io::Error,
    },
    /// The interface index does not fit `sockaddr_ll`.
    #[error("interface index {0} is out of range")]
    BadIndex(u32),
    /// A frame could not be sent.
    #[error("sending the ARP {op} of round {round}/{count}: {cause}")]
    Send {
        /// Which frame of the round.
        op: ArpOp,
        /// The round, from 1.
        round: u32,
        /// Rounds in the burst.
        count: u32,
        /// The system error.
        cause: io::Error,
    },
    /// The kernel took only part of a frame.
    #[error("the ARP {op} of round {round} was sent short: {sent} of {FRAME_LEN} bytes")]
    Short {
        /// Which frame of the round.
        op: ArpOp,
        /// The round, from 1.
        round: u32,
        /// Bytes the kernel accepted.
        sent: usize,
    },
}

/// Builds the gratuitous ARP frame `op` for `ip` from `mac`: Ethernet broadcast from `mac`,
/// ARP for Ethernet/IPv4 with sender `mac`/`ip`, target `ff:ff:ff:ff:ff:ff`/`ip` (as MMM's
/// `Net::ARP::send_packet($if, $ip, $ip, $mac, 'ff:ff:ff:ff:ff:ff', $op)` did), zero padded.
pub fn gratuitous_frame(op: ArpOp, mac: [u8; 6], ip: Ipv4Addr) -> [u8; FRAME_LEN] {
    let mut frame = [0u8; FRAME_LEN];
    // Ethernet header.
    frame[0..6].copy_from_slice(&BROADCAST);
    frame[6..12].copy_from_slice(&mac);
    frame[12..14].copy_from_slice(&ETHERTYPE_ARP.to_be_bytes());
    // ARP: hardware type Ethernet (1), protocol IPv4 (0x0800), address lengths 6 and 4.
    frame[14..16].copy_from_slice(&1u16.to_be_bytes());
    frame[16..18].copy_from_slice(&0x0800u16.to_be_bytes());
    frame[18] = 6;
    frame[19] = 4;
    frame[20..22].copy_from_slice(&op.code().to_be_bytes());
    frame[22..28].copy_from_slice(&mac);
    frame[28..32].copy_from_slice(&ip.octets());
    frame[32..38].copy_from_slice(&BROADCAST);
    frame[38..42].copy_from_slice(&ip.octets());
    // frame[42..60] stays zero: padding.
    frame
}

/// An `AF_PACKET` raw socket for sending whole Ethernet frames. It receives nothing (protocol
/// 0) and belongs to the network namespace of the thread that opened it.
#[derive(Debug)]
pub struct PacketSocket {
    fd: OwnedFd,
}

impl PacketSocket {
    /// Opens the socket. Needs `CAP_NET_RAW`.
    pub fn open() -> io::Result<Self> {
        // SAFETY: socket(2) takes no pointers; its result is checked before use.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a valid descriptor that was just created and that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(PacketSocket { fd })
    }

    /// Sends `frame` (a whole Ethernet frame, header included) to the broadcast address out of
    /// interface `ifindex`, without blocking. Returns the bytes sent.
    pub fn send_broadcast(&self, ifindex: i32, frame: &[u8]) -> io::Result<usize> {
        let mut sll_addr = [0u8; 8];
        sll_addr[..6].copy_from_slice(&BROADCAST);
        let addr = libc::sockaddr_ll {
            sll_family: libc::AF_PACKET as libc::c_ushort,
            sll_protocol: ETHERTYPE_ARP.to_be(),
            sll_ifindex: ifindex,
            sll_hatype: 0,
            sll_pkttype: 0,
            sll_halen: 6,
            sll_addr,
        };
        // SAFETY: `frame` is valid for `frame.len()` bytes and `addr` is a fully initialised
        // sockaddr_ll whose exact size is passed; both outlive the call, which keeps neither.
        // MSG_DONTWAIT: never block the (async) caller, fail with EAGAIN instead.
        let sent = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                libc::MSG_DONTWAIT,
                (&addr as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        // `sent` is non-negative here, so the conversion is lossless.
        Ok(sent.unsigned_abs())
    }
}

/// Sends a gratuitous ARP burst for `ip` from `mac` out of interface `ifindex`: `config.count`
/// rounds of one request and one reply, `config.interval` apart (tokio sleeps, so the runtime
/// is never blocked). The socket is opened in the network namespace of the calling thread.
pub async fn announce(
    ifindex: u32,
    mac: [u8; 6],
    ip: Ipv4Addr,
    config: &ArpConfig,
) -> Result<(), ArpError> {
    if config.count == 0 {
        return Ok(());
    }
    let index = i32::try_from(ifindex).map_err(|_| ArpError::BadIndex(ifindex))?;
    let socket = PacketSocket::open().map_err(|cause| ArpError::Socket { cause })?;
    let frames = [
        (ArpOp::Request, gratuitous_frame(ArpOp::Request, mac, ip)),
        (ArpOp::Reply, gratuitous_frame(ArpOp::Reply, mac, ip)),
    ];
    for round in 1..=config.count {
        for (op, frame) in &frames {
            let sent = socket
                .send_broadcast(index, frame)
                .map_err(|cause| ArpError::Send {
                    op: *op,
                    round,
                    count: config.count,
                    cause,
                })?;
            if sent != frame.len() {
                return Err(ArpError::Short {
                    op: *op,
                    round,
                    sent,
                });
            }
        }
        if round < config.count {
            tokio::time::sleep(config.interval).await;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0x02, 0x11, 0x22, 0x33, 0x44, 0x55];
    const IP: Ipv4Addr = Ipv4Addr::new(10, 213, 0, 200);

    #[rustfmt::skip]
    fn expected(op: u8) -> [u8; FRAME_LEN] {
        [
            // Ethernet: destination broadcast, source MAC, EtherType ARP.
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0x02, 0x11, 0x22, 0x33, 0x44, 0x55,
            0x08, 0x06,
            // ARP: htype 1, ptype 0x0800, hlen 6, plen 4, operation.
            0x00, 0x01,
            0x08, 0x00,
            6, 4,
            0x00, op,
            // Sender MAC and IP.
            0x02, 0x11, 0x22, 0x33, 0x44, 0x55,
            10, 213, 0, 200,
            // Target MAC (broadcast, as MMM) and IP (the VIP itself).
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            10, 213, 0, 200,
            // Padding to 60 bytes.
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ]
    }

    #[test]
    fn request_frame_byte_by_byte() {
        assert_eq!(gratuitous_frame(ArpOp::Request, MAC, IP), expected(1));
    }

    #[test]
    fn reply_frame_byte_by_byte() {
        assert_eq!(gratuitous_frame(ArpOp::Reply, MAC, IP), expected(2));
    }

    #[test]
    fn frames_differ_only_in_the_operation() {
        let request = gratuitous_frame(ArpOp::Request, MAC, IP);
        let reply = gratuitous_frame(ArpOp::Reply, MAC, IP);
        let differing: Vec<usize> = (0..FRAME_LEN).filter(|&i| request[i] != reply[i]).collect();
        assert_eq!(differing, vec![21]);
    }

    #[test]
    fn default_burst_is_mmms_five_rounds() {
        let config = ArpConfig::default();
        assert_eq!(config.count, 5);
        assert_eq!(config.interval, Duration::from_millis(50));
    }

    #[tokio::test]
    async fn an_empty_burst_opens_nothing_and_succeeds() {
        // Zero rounds must not even need CAP_NET_RAW.
        let config = ArpConfig {
            count: 0,
            interval: Duration::ZERO,
        };
        assert!(announce(u32::MAX, MAC, IP, &config).await.is_ok());
    }
}
