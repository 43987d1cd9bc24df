//! Network namespaces for integration tests: a [`Lab`] is a handful of namespaces ("hosts"),
//! each with an `eth0` on `10.213.0.0/24`, joined by a bridge that lives in a namespace of its
//! own, all deleted on drop. Nothing touches the namespace the tests run in.
//!
//! Code runs inside a namespace with [`run_in`] / [`run_in_async`] (a dedicated thread that
//! `setns(2)`s first), commands with [`exec`] (`ip netns exec`). [`ping`] and
//! [`PacketCapture`] need no external tool. Setup shells out to `ip` (iproute2) and needs root;
//! without either, [`Lab::new`] fails and says so.

use std::ffi::CString;
use std::fs::File;
use std::future::Future;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};

/// Where `ip netns` keeps its namespaces.
pub const NETNS_DIR: &str = "/var/run/netns";

/// The first three octets of every lab's subnet, `10.213.0.0/24` (private, never routed; each
/// lab has its own bridge, so labs do not see each other).
pub const SUBNET: [u8; 3] = [10, 213, 0];

/// The prefix length of the lab subnet.
pub const PREFIX_LEN: u8 = 24;

/// The interface every host has on the lab bridge.
pub const HOST_INTERFACE: &str = "eth0";

/// Names of lab namespaces start with this, then the creating process's pid.
const NAME_PREFIX: &str = "mmmt";

/// Labs created by this process so far, to name the next one.
static LABS: AtomicU32 = AtomicU32::new(0);

/// One host of a lab: a network namespace with `eth0` on the lab bridge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// The name the test gave it.
    pub name: String,
    /// The namespace's name (in [`NETNS_DIR`]).
    pub ns: String,
    /// Its interface on the bridge, [`HOST_INTERFACE`].
    pub interface: String,
    /// The address of that interface (prefix [`PREFIX_LEN`]).
    pub ip: Ipv4Addr,
}

impl Host {
    /// Runs `f` in this host's namespace; see [`run_in`].
    pub fn run<T: Send, F: FnOnce() -> T + Send>(&self, f: F) -> anyhow::Result<T> {
        run_in(&self.ns, f)
    }

    /// Runs the future made by `f` in this host's namespace; see [`run_in_async`].
    pub fn run_async<T, F, Fut>(&self, f: F) -> anyhow::Result<T>
    where
        T: Send,
        F: FnOnce() -> Fut + Send,
        Fut: Future<Output = T>,
    {
        run_in_async(&self.ns, f)
    }

    /// Runs `argv` in this host's namespace and returns its stdout; see [`exec_ok`].
    pub fn exec(&self, argv: &[&str]) -> anyhow::Result<String> {
        exec_ok(&self.ns, argv)
    }

    /// The MAC address of `eth0`, as `ip` prints it (`02:ab:...`, lower case).
    pub fn mac(&self) -> anyhow::Result<String> {
        mac(&self.ns, &self.interface)
    }

    /// The IPv4 addresses on `eth0` with their prefix length (`10.213.0.1/24`).
    pub fn ipv4_addresses(&self) -> anyhow::Result<Vec<String>> {
        ipv4_addresses(&self.ns, &self.interface)
    }

    /// This host's neighbour (ARP) entry for `ip` on `eth0`, if it has one.
    pub fn neighbour(&self, ip: Ipv4Addr) -> anyhow::Result<Option<Neighbour>> {
        neighbour(&self.ns, &self.interface, ip)
    }

    /// Sends ICMP echo requests from this host to `ip` until one is answered (`true`) or
    /// `timeout` passes (`false`); see [`ping`].
    pub fn ping(&self, ip: Ipv4Addr, timeout: Duration) -> anyhow::Result<bool> {
        ping(&self.ns, ip, timeout)
    }
}

/// A neighbour (ARP) table entry, as `ip neigh` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Neighbour {
    /// The link-layer address, absent in `INCOMPLETE` and `FAILED` entries.
    pub lladdr: Option<String>,
    /// The NUD state (`REACHABLE`, `STALE`, `DELAY`, `PROBE`, `FAILED`, ...).
    pub state: String,
}

/// Network namespaces joined by a bridge, all deleted on drop (after killing the processes
/// started with [`Lab::spawn`]).
#[derive(Debug)]
pub struct Lab {
    id: String,
    bridge_ns: String,
    hosts: Vec<Host>,
    /// Namespaces created so far, deleted on drop in reverse order.
    namespaces: Vec<String>,
    children: Mutex<Vec<Child>>,
}

impl Lab {
    /// Creates one namespace per name in `hosts` (names of letters, digits, `-` and `_`), each
    /// with `lo` up and `eth0` = `10.213.0.<n>/24` (n = 1, 2, ... in order), plus a namespace
    /// holding the bridge `br0` their veth peers are on, and waits until every `eth0` is up.
    /// Namespace names start with `mmmt<pid>-`, so parallel test processes do not collide;
    /// namespaces left by dead test processes are deleted first.
    pub fn new(hosts: &[&str]) -> anyhow::Result<Lab> {
        require_prerequisites()?;
        ensure!(
            !hosts.is_empty() && hosts.len() < 200,
            "a lab has 1 to 199 hosts"
        );
        for (i, name) in hosts.iter().enumerate() {
            ensure!(
                !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
                "host name {name:?}: use letters, digits, '-' and '_'"
            );
            ensure!(
                !hosts[..i].contains(name),
                "host name {name:?} is used twice"
            );
        }
        sweep_stale();

        let id = format!(
            "{NAME_PREFIX}{}-{}",
            std::process::id(),
            LABS.fetch_add(1, Ordering::Relaxed)
        );
        let mut lab = Lab {
            bridge_ns: format!("{id}-bridge"),
            id,
            hosts: Vec::new(),
            namespaces: Vec::new(),
            children: Mutex::new(Vec::new()),
        };
        // From here on, a failure drops `lab`, which deletes what was created.
        let br = lab.bridge_ns.clone();
        lab.add_namespace(&br)?;
        ip(&["-n", &br, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &br, "link", "set", "br0", "up"])?;
        for (i, name) in hosts.iter().enumerate() {
            let ns = format!("{}-{name}", lab.id);
            lab.add_namespace(&ns)?;
            let port = format!("p{i}");
            let addr = Ipv4Addr::new(SUBNET[0], SUBNET[1], SUBNET[2], (i + 1) as u8);
            let cidr = format!("{addr}/{PREFIX_LEN}");
            ip(&[
                "-n",
                &br,
                "link",
                "add",
                &port,
                "type",
                "veth",
                "peer",
                "name",
                HOST_INTERFACE,
                "netns",
                &ns,
            ])?;
            ip(&["-n", &br, "link", "set", &port, "master", "br0"])?;
            ip(&["-n", &br, "link", "set", &port, "up"])?;
            ip(&["-n", &ns, "addr", "add", &cidr, "dev", HOST_INTERFACE])?;
            ip(&["-n", &ns, "link", "set", HOST_INTERFACE, "up"])?;
            lab.hosts.push(Host {
                name: (*name).to_owned(),
                ns,
                interface: HOST_INTERFACE.to_owned(),
                ip: addr,
            });
        }
        for host in &lab.hosts {
            wait_link_up(&host.ns, &host.interface, Duration::from_secs(10))?;
        }
        Ok(lab)
    }

    /// The host called `name`.
    ///
    /// # Panics
    /// If the lab has no such host (a mistake in the test).
    pub fn host(&self, name: &str) -> &Host {
        match self.hosts.iter().find(|h| h.name == name) {
            Some(host) => host,
            None => panic!("lab {} has no host {name:?}", self.id),
        }
    }

    /// Every host, in creation order.
    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    /// Cuts `name` off the network: its port on the bridge goes down, so nothing reaches it
    /// and it reaches nothing, while its own `eth0` stays up (as when a switch port or cable
    /// fails).
    pub fn cut(&self, name: &str) -> anyhow::Result<()> {
        self.set_port(name, "down")
    }

    /// Puts `name` back on the network after [`Lab::cut`].
    pub fn heal(&self, name: &str) -> anyhow::Result<()> {
        self.set_port(name, "up")
    }

    fn set_port(&self, name: &str, updown: &str) -> anyhow::Result<()> {
        let i = self
            .hosts
            .iter()
            .position(|h| h.name == name)
            .with_context(|| format!("lab {} has no host {name:?}", self.id))?;
        ip(&[
            "-n",
            &self.bridge_ns,
            "link",
            "set",
            &format!("p{i}"),
            updown,
        ])
        .map(|_| ())
    }

    /// The namespace holding the bridge.
    pub fn bridge_ns(&self) -> &str {
        &self.bridge_ns
    }

    /// An address of the lab subnet that no host has: `10.213.0.<200 + n>` (for VIPs).
    ///
    /// # Panics
    /// If `n > 54`.
    pub fn spare_ip(&self, n: u8) -> Ipv4Addr {
        assert!(n <= 54, "spare_ip({n}): at most 54");
        Ipv4Addr::new(SUBNET[0], SUBNET[1], SUBNET[2], 200 + n)
    }

    /// A command that runs `program` in namespace `ns` (`ip netns exec ns program`); add
    /// arguments, environment and stdio, then run it or hand it to [`Lab::spawn`].
    pub fn command(ns: &str, program: &str) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", ns, program]);
        command
    }

    /// Starts `command` (typically from [`Lab::command`]) and keeps it: it is killed when the
    /// lab is dropped. Returns its pid.
    pub fn spawn(&self, mut command: Command) -> anyhow::Result<u32> {
        let child = command
            .spawn()
            .with_context(|| format!("starting {command:?}"))?;
        let pid = child.id();
        self.children
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(child);
        Ok(pid)
    }

    /// Sends SIGKILL to the process `pid` started with [`Lab::spawn`] and reaps it.
    pub fn kill(&self, pid: u32) -> anyhow::Result<()> {
        let mut children = self
            .children
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let child = children
            .iter_mut()
            .find(|c| c.id() == pid)
            .with_context(|| format!("no process {pid} was started by lab {}", self.id))?;
        child.kill().with_context(|| format!("killing {pid}"))?;
        child.wait().with_context(|| format!("reaping {pid}"))?;
        Ok(())
    }

    fn add_namespace(&mut self, ns: &str) -> anyhow::Result<()> {
        ip(&["netns", "add", ns])?;
        self.namespaces.push(ns.to_owned());
        ip(&["-n", ns, "link", "set", "lo", "up"])?;
        Ok(())
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let children = self
            .children
            .get_mut()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for child in children.iter_mut() {
            // An already exited child makes kill fail; wait reaps it either way.
            let _ = child.kill();
            let _ = child.wait();
        }
        // Deleting a namespace destroys its interfaces, and a veth end takes its peer along.
        for ns in self.namespaces.iter().rev() {
            if let Err(e) = ip(&["netns", "del", ns]) {
                eprintln!("mmm-testkit: cleaning up lab {}: {e:#}", self.id);
            }
        }
    }
}

/// Runs `f` on a new OS thread that first joins network namespace `ns` (`setns(2)` on
/// [`NETNS_DIR`]`/ns`); sockets it opens, and threads it starts, belong to `ns`. A panic in `f`
/// is resumed in the caller, so assertions inside work as usual.
pub fn run_in<T: Send, F: FnOnce() -> T + Send>(ns: &str, f: F) -> anyhow::Result<T> {
    let path = format!("{NETNS_DIR}/{ns}");
    let file = File::open(&path).with_context(|| format!("opening network namespace {path}"))?;
    std::thread::scope(|scope| {
        let thread = scope.spawn(move || -> anyhow::Result<T> {
            // SAFETY: `file` is an open namespace file for the whole call; setns(2) with
            // CLONE_NEWNET changes only this thread's network namespace.
            let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            if rc != 0 {
                return Err(io::Error::last_os_error())
                    .with_context(|| format!("setns into {path}"));
            }
            Ok(f())
        });
        match thread.join() {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// Like [`run_in`], for async code: the thread builds a current-thread tokio runtime (IO and
/// time enabled) and blocks on the future `f` makes. Tasks it spawns run in `ns` too.
pub fn run_in_async<T, F, Fut>(ns: &str, f: F) -> anyhow::Result<T>
where
    T: Send,
    F: FnOnce() -> Fut + Send,
    Fut: Future<Output = T>,
{
    run_in(ns, move || -> anyhow::Result<T> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("building a tokio runtime")?;
        Ok(runtime.block_on(f()))
    })?
}

/// Runs `argv` in namespace `ns` (`ip netns exec ns argv...`) and returns what it did,
/// whatever its exit status.
pub fn exec(ns: &str, argv: &[&str]) -> anyhow::Result<Output> {
    let Some((program, args)) = argv.split_first() else {
        bail!("exec in {ns}: empty command");
    };
    Lab::command(ns, program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running `ip netns exec {ns} {}`", argv.join(" ")))
}

/// Like [`exec`], but a non-zero exit is an error (with its stderr); returns stdout.
pub fn exec_ok(ns: &str, argv: &[&str]) -> anyhow::Result<String> {
    let output = exec(ns, argv)?;
    checked(&format!("ip netns exec {ns} {}", argv.join(" ")), output)
}

/// The MAC address of `interface` in `ns`, lower case.
pub fn mac(ns: &str, interface: &str) -> anyhow::Result<String> {
    let out = ip(&["-n", ns, "-o", "link", "show", "dev", interface])?;
    let mut words = out.split_whitespace();
    while let Some(word) = words.next() {
        if word == "link/ether" {
            if let Some(mac) = words.next() {
                return Ok(mac.to_ascii_lowercase());
            }
        }
    }
    bail!("no link/ether address for {interface} in {ns}: {out}")
}

/// The IPv4 addresses on `interface` in `ns`, with prefix length (`10.213.0.1/24`).
pub fn ipv4_addresses(ns: &str, interface: &str) -> anyhow::Result<Vec<String>> {
    let out = ip(&["-n", ns, "-o", "-4", "addr", "show", "dev", interface])?;
    let mut addresses = Vec::new();
    for line in out.lines() {
        let mut words = line.split_whitespace();
        while let Some(word) = words.next() {
            if word == "inet" {
                if let Some(address) = words.next() {
                    addresses.push(address.to_owned());
                }
            }
        }
    }
    Ok(addresses)
}

/// The neighbour entry for `ip` on `interface` in `ns` (`ip neigh show to ip dev interface`).
pub fn neighbour(
    ns: &str,
    interface: &str,
    ip_addr: Ipv4Addr,
) -> anyhow::Result<Option<Neighbour>> {
    let out = ip(&[
        "-n",
        ns,
        "neigh",
        "show",
        "to",
        &ip_addr.to_string(),
        "dev",
        interface,
    ])?;
    Ok(out.lines().find_map(|line| parse_neighbour(line, ip_addr)))
}

/// Parses one `ip neigh show ... dev X` line: `10.0.0.1 lladdr aa:bb:cc:dd:ee:ff REACHABLE`.
fn parse_neighbour(line: &str, ip_addr: Ipv4Addr) -> Option<Neighbour> {
    let words: Vec<&str> = line.split_whitespace().collect();
    if words.first()? != &ip_addr.to_string() {
        return None;
    }
    let lladdr = words
        .iter()
        .position(|w| *w == "lladdr")
        .and_then(|i| words.get(i + 1))
        .map(|mac| mac.to_ascii_lowercase());
    let state = words.last()?.to_string();
    Some(Neighbour { lladdr, state })
}

/// Pings `ip` from namespace `ns` with a raw ICMP socket (no `ping` binary needed): an echo
/// request every 200 ms until an echo reply from `ip` arrives (`true`) or `timeout` passes
/// (`false`).
pub fn ping(ns: &str, ip_addr: Ipv4Addr, timeout: Duration) -> anyhow::Result<bool> {
    run_in(ns, move || icmp_ping(ip_addr, timeout))?
        .with_context(|| format!("pinging {ip_addr} from {ns}"))
}

fn icmp_ping(ip_addr: Ipv4Addr, timeout: Duration) -> io::Result<bool> {
    // SAFETY: socket(2) takes no pointers; its result is checked before use.
    let fd = unsafe {
        libc::socket(
            libc::AF_INET,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::IPPROTO_ICMP,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a valid descriptor that was just created and that nothing else owns.
    let socket = unsafe { OwnedFd::from_raw_fd(fd) };
    // Distinct per process and per call, so concurrent pings do not take each other's replies.
    static PINGS: AtomicU32 = AtomicU32::new(0);
    let id = (std::process::id() as u16) ^ ((PINGS.fetch_add(1, Ordering::Relaxed) as u16) << 8);
    let to = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from(ip_addr).to_be(),
        },
        sin_zero: [0; 8],
    };
    let deadline = Instant::now() + timeout;
    let mut seq: u16 = 0;
    let mut next_send = Instant::now();
    let mut buf = [0u8; 2048];
    loop {
        let now = Instant::now();
        if now >= deadline {
            return Ok(false);
        }
        if now >= next_send {
            seq = seq.wrapping_add(1);
            let request = echo_request(id, seq);
            // SAFETY: `request` and `to` are valid for the lengths passed and outlive the call.
            let sent = unsafe {
                libc::sendto(
                    socket.as_raw_fd(),
                    request.as_ptr().cast(),
                    request.len(),
                    0,
                    (&to as *const libc::sockaddr_in).cast(),
                    std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
                )
            };
            if sent < 0 {
                let e = io::Error::last_os_error();
                // No neighbour yet, or unreachable: keep trying until the deadline.
                if !matches!(
                    e.raw_os_error(),
                    Some(libc::EHOSTUNREACH | libc::ENETUNREACH | libc::EAGAIN)
                ) {
                    return Err(e);
                }
            }
            next_send = now + Duration::from_millis(200);
        }
        let wait = next_send
            .min(deadline)
            .saturating_duration_since(Instant::now());
        if !readable(&socket, wait)? {
            continue;
        }
        // SAFETY: `buf` is valid for writes of `buf.len()` bytes for the whole call.
        let n = unsafe {
            libc::recv(
                socket.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_DONTWAIT,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::EINTR)) {
                continue;
            }
            return Err(e);
        }
        if is_echo_reply(&buf[..n.unsigned_abs()], ip_addr, id) {
            return Ok(true);
        }
    }
}

/// An ICMP echo request with identifier `id` and sequence `seq`.
fn echo_request(id: u16, seq: u16) -> Vec<u8> {
    let mut packet = vec![8, 0, 0, 0];
    packet.extend_from_slice(&id.to_be_bytes());
    packet.extend_from_slice(&seq.to_be_bytes());
    packet.extend_from_slice(b"mmm-testkit ping");
    let sum = internet_checksum(&packet);
    packet[2..4].copy_from_slice(&sum.to_be_bytes());
    packet
}

/// Whether `packet` (IPv4 header included, as raw sockets deliver it) is an echo reply from
/// `from` with identifier `id`.
fn is_echo_reply(packet: &[u8], from: Ipv4Addr, id: u16) -> bool {
    let Some(&first) = packet.first() else {
        return false;
    };
    let header_len = usize::from(first & 0x0f) * 4;
    if header_len < 20 || packet.len() < header_len + 8 || packet[12..16] != from.octets() {
        return false;
    }
    let icmp = &packet[header_len..];
    icmp[0] == 0 && icmp[4..6] == id.to_be_bytes()
}

/// RFC 1071 checksum.
fn internet_checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for chunk in data.chunks(2) {
        let word = match chunk {
            [a, b] => u16::from_be_bytes([*a, *b]),
            [a] => u16::from_be_bytes([*a, 0]),
            _ => 0,
        };
        sum += u32::from(word);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Waits up to `timeout` for `socket` to be readable.
fn readable(socket: &OwnedFd, timeout: Duration) -> io::Result<bool> {
    let mut pollfd = libc::pollfd {
        fd: socket.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
    // SAFETY: `pollfd` is one valid, initialised pollfd for the whole call.
    let rc = unsafe { libc::poll(&mut pollfd, 1, ms) };
    if rc < 0 {
        let e = io::Error::last_os_error();
        return if e.raw_os_error() == Some(libc::EINTR) {
            Ok(false)
        } else {
            Err(e)
        };
    }
    Ok(rc > 0 && pollfd.revents & libc::POLLIN != 0)
}

/// Frames of one EtherType received on one interface of a namespace, from an `AF_PACKET`
/// socket bound there when [`PacketCapture::open`] returns: what arrives later is kept until
/// [`PacketCapture::frames`] reads it.
#[derive(Debug)]
pub struct PacketCapture {
    socket: OwnedFd,
}

impl PacketCapture {
    /// Starts capturing frames of `ethertype` (e.g. `0x0806`, ARP) arriving on `interface` in
    /// namespace `ns`.
    pub fn open(ns: &str, interface: &str, ethertype: u16) -> anyhow::Result<PacketCapture> {
        let name = CString::new(interface).context("interface name")?;
        run_in(ns, move || -> io::Result<PacketCapture> {
            let protocol = libc::c_int::from(ethertype.to_be());
            // SAFETY: socket(2) takes no pointers; its result is checked before use.
            let fd = unsafe {
                libc::socket(
                    libc::AF_PACKET,
                    libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                    protocol,
                )
            };
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: `fd` is a valid descriptor that was just created and that nothing else owns.
            let socket = unsafe { OwnedFd::from_raw_fd(fd) };
            // SAFETY: `name` is a valid NUL-terminated string for the whole call.
            let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
            if index == 0 {
                return Err(io::Error::last_os_error());
            }
            let addr = libc::sockaddr_ll {
                sll_family: libc::AF_PACKET as libc::c_ushort,
                sll_protocol: ethertype.to_be(),
                sll_ifindex: libc::c_int::try_from(index)
                    .map_err(|_| io::Error::other("interface index out of range"))?,
                sll_hatype: 0,
                sll_pkttype: 0,
                sll_halen: 0,
                sll_addr: [0; 8],
            };
            // SAFETY: `addr` is a fully initialised sockaddr_ll whose exact size is passed.
            let rc = unsafe {
                libc::bind(
                    socket.as_raw_fd(),
                    (&addr as *const libc::sockaddr_ll).cast(),
                    std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
                )
            };
            if rc != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(PacketCapture { socket })
        })?
        .with_context(|| format!("capturing EtherType {ethertype:#06x} on {interface} in {ns}"))
    }

    /// The frames (Ethernet header included) received since [`PacketCapture::open`] and within
    /// `duration` from now; frames this host sent itself are left out.
    pub fn frames(&self, duration: Duration) -> anyhow::Result<Vec<Vec<u8>>> {
        let deadline = Instant::now() + duration;
        let mut frames = Vec::new();
        let mut buf = [0u8; 2048];
        loop {
            let wait = deadline.saturating_duration_since(Instant::now());
            if !readable(&self.socket, wait).context("waiting for frames")? {
                if Instant::now() >= deadline {
                    return Ok(frames);
                }
                continue;
            }
            let mut from = libc::sockaddr_ll {
                sll_family: 0,
                sll_protocol: 0,
                sll_ifindex: 0,
                sll_hatype: 0,
                sll_pkttype: 0,
                sll_halen: 0,
                sll_addr: [0; 8],
            };
            let mut from_len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
            // SAFETY: `buf` is valid for writes of `buf.len()` bytes, `from` for `from_len`
            // bytes, and `from_len` is a valid socklen_t; all outlive the call.
            let n = unsafe {
                libc::recvfrom(
                    self.socket.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_DONTWAIT,
                    (&mut from as *mut libc::sockaddr_ll).cast(),
                    &mut from_len,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                if matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::EINTR)) {
                    continue;
                }
                return Err(e).context("receiving a frame");
            }
            if from.sll_pkttype != libc::PACKET_OUTGOING as libc::c_uchar {
                frames.push(buf[..n.unsigned_abs()].to_vec());
            }
        }
    }
}

/// Fails, saying what is needed, unless this process is root and `ip` (iproute2) runs.
fn require_prerequisites() -> anyhow::Result<()> {
    // SAFETY: geteuid(2) takes no arguments and cannot fail.
    let euid = unsafe { libc::geteuid() };
    ensure!(
        euid == 0,
        "network namespace tests need root (they create namespaces, veth pairs and a bridge): \
         run them as root, e.g. `sudo -E cargo test` (euid is {euid})"
    );
    match Command::new("ip").arg("-V").output() {
        Ok(output) if output.status.success() => Ok(()),
        Ok(output) => bail!(
            "`ip -V` failed ({}): network namespace tests need iproute2's `ip`",
            output.status
        ),
        Err(e) => bail!(
            "cannot run `ip` ({e}): network namespace tests need iproute2 (apt-get install iproute2)"
        ),
    }
}

/// Deletes lab namespaces left behind by test processes that no longer exist (killed before
/// their labs were dropped). Best effort.
fn sweep_stale() {
    let Ok(entries) = std::fs::read_dir(NETNS_DIR) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(NAME_PREFIX) else {
            continue;
        };
        let pid: String = rest.chars().take_while(char::is_ascii_digit).collect();
        if pid.is_empty() || !rest[pid.len()..].starts_with('-') {
            continue;
        }
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            if let Err(e) = ip(&["netns", "del", &name]) {
                eprintln!("mmm-testkit: deleting stale namespace {name}: {e:#}");
            }
        }
    }
}

/// Waits until `interface` in `ns` is operationally up.
fn wait_link_up(ns: &str, interface: &str, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let out = ip(&["-n", ns, "-o", "link", "show", "dev", interface])?;
        if out.contains("state UP") {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("{interface} in {ns} is not up after {timeout:?}: {out}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `ip args...`; a non-zero exit is an error with its stderr. Returns stdout.
fn ip(args: &[&str]) -> anyhow::Result<String> {
    let output = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running `ip {}`", args.join(" ")))?;
    checked(&format!("ip {}", args.join(" ")), output)
}

fn checked(what: &str, output: Output) -> anyhow::Result<String> {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        bail!(
            "`{what}` failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim(),
            stdout.trim()
        );
    }
    Ok(stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_of_a_known_echo_request() {
        // type 8, code 0, id 0x1234, seq 1, no payload: ~(0x0800 + 0x1234 + 0x0001) = 0xe5ca.
        let mut packet = vec![8, 0, 0, 0, 0x12, 0x34, 0, 1];
        assert_eq!(internet_checksum(&packet), 0xe5ca);
        packet[2..4].copy_from_slice(&0xe5cau16.to_be_bytes());
        assert_eq!(internet_checksum(&packet), 0);
    }

    #[test]
    fn echo_requests_carry_a_valid_checksum() {
        let request = echo_request(0xabcd, 7);
        assert_eq!(&request[..2], &[8, 0]);
        assert_eq!(&request[4..8], &[0xab, 0xcd, 0, 7]);
        assert_eq!(internet_checksum(&request), 0);
    }

    #[test]
    fn echo_replies_are_recognised_by_source_and_id() {
        let from = Ipv4Addr::new(10, 213, 0, 200);
        let mut packet = vec![0u8; 20];
        packet[0] = 0x45;
        packet[12..16].copy_from_slice(&from.octets());
        packet.extend_from_slice(&[0, 0, 0, 0, 0xab, 0xcd, 0, 1]);
        assert!(is_echo_reply(&packet, from, 0xabcd));
        assert!(!is_echo_reply(&packet, from, 0xabce));
        assert!(!is_echo_reply(
            &packet,
            Ipv4Addr::new(10, 213, 0, 1),
            0xabcd
        ));
        packet[20] = 8; // an echo request, not a reply
        assert!(!is_echo_reply(&packet, from, 0xabcd));
        assert!(!is_echo_reply(&packet[..24], from, 0xabcd));
    }

    #[test]
    fn neighbour_lines_are_parsed() {
        let ip_addr = Ipv4Addr::new(10, 213, 0, 200);
        assert_eq!(
            parse_neighbour("10.213.0.200 lladdr 02:AA:bb:cc:dd:ee REACHABLE", ip_addr),
            Some(Neighbour {
                lladdr: Some("02:aa:bb:cc:dd:ee".to_owned()),
                state: "REACHABLE".to_owned()
            })
        );
        assert_eq!(
            parse_neighbour("10.213.0.200 FAILED", ip_addr),
            Some(Neighbour {
                lladdr: None,
                state: "FAILED".to_owned()
            })
        );
        assert_eq!(
            parse_neighbour("10.213.0.2 lladdr 02:aa:bb:cc:dd:ee STALE", ip_addr),
            None
        );
    }
}
