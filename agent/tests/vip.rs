//! `NetlinkVips` on real interfaces, in network namespaces made by `mmm_testkit::netns` (root
//! and iproute2 needed; without them these tests fail and say so): VIPs go on and off the
//! interface, a moved VIP is announced by gratuitous ARP that a client on the same bridge
//! believes without asking, and the burst on the wire is exactly MMM's.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use mmm_agent::arp::{gratuitous_frame, ArpConfig, ArpOp, ETHERTYPE_ARP};
use mmm_agent::ops::{VipError, Vips};
use mmm_agent::vip::NetlinkVips;
use mmm_testkit::netns::{Host, Lab, PacketCapture, HOST_INTERFACE};

const PING_TIMEOUT: Duration = Duration::from_secs(5);

/// Adds (`on`) or removes `vip` on `host` through a fresh `NetlinkVips` with `arp`; returns
/// what `add`/`remove` answered.
fn set_vip(host: &Host, vip: Ipv4Addr, on: bool, arp: ArpConfig) -> bool {
    host.run_async(|| async move {
        let vips = NetlinkVips::new(HOST_INTERFACE)
            .await
            .expect("NetlinkVips::new")
            .with_arp(arp);
        if on {
            vips.add(vip.into()).await.expect("add")
        } else {
            vips.remove(vip.into()).await.expect("remove")
        }
    })
    .expect("run in namespace")
}

fn parse_mac(mac: &str) -> [u8; 6] {
    let bytes: Vec<u8> = mac
        .split(':')
        .map(|b| u8::from_str_radix(b, 16).expect("hex"))
        .collect();
    bytes.try_into().expect("6 bytes")
}

/// Polls `host`'s neighbour entry for `ip` until its MAC is `mac`, for at most `timeout`;
/// returns the last entry seen.
fn wait_neighbour_mac(
    host: &Host,
    ip: Ipv4Addr,
    mac: &str,
    timeout: Duration,
) -> Option<mmm_testkit::netns::Neighbour> {
    let deadline = Instant::now() + timeout;
    loop {
        let entry = host.neighbour(ip).expect("ip neigh");
        let done = entry.as_ref().and_then(|e| e.lladdr.as_deref()) == Some(mac);
        if done || Instant::now() >= deadline {
            return entry;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn add_puts_a_slash_32_on_the_interface_idempotently_and_remove_takes_it_off() {
    let lab = Lab::new(&["db1"]).expect("lab");
    let host = lab.host("db1");
    let vip = lab.spare_ip(0);
    let slash32 = format!("{vip}/32");
    let own = IpAddr::V4(host.ip);

    host.run_async(|| async {
        let vips = NetlinkVips::new(HOST_INTERFACE).await.expect("new");
        assert_eq!(vips.interface(), HOST_INTERFACE);
        let before = vips.configured().await.expect("configured");
        assert!(before.contains(&own), "{before:?} lacks {own}");
        assert!(!before.contains(&vip.into()));

        assert!(vips.add(vip.into()).await.expect("add"), "first add adds");
        let addresses = host.ipv4_addresses().expect("ip addr");
        assert!(addresses.contains(&slash32), "{addresses:?}");
        assert!(vips
            .configured()
            .await
            .expect("configured")
            .contains(&vip.into()));

        assert!(
            !vips.add(vip.into()).await.expect("add again"),
            "second add is a no-op"
        );
        let addresses = host.ipv4_addresses().expect("ip addr");
        assert_eq!(
            addresses.iter().filter(|a| **a == slash32).count(),
            1,
            "{addresses:?}"
        );

        assert!(
            vips.remove(vip.into()).await.expect("remove"),
            "remove removes"
        );
        let addresses = host.ipv4_addresses().expect("ip addr");
        assert!(!addresses.contains(&slash32), "{addresses:?}");
        assert!(!vips
            .configured()
            .await
            .expect("configured")
            .contains(&vip.into()));
        assert!(
            !vips.remove(vip.into()).await.expect("remove again"),
            "second remove is a no-op"
        );

        // The host's own /24 counts as present for add, and is no VIP for remove.
        assert!(!vips.add(own).await.expect("add own address"));
        assert!(!vips.remove(own).await.expect("remove own address"));
        let own_cidr = format!("{}/24", host.ip);
        assert_eq!(host.ipv4_addresses().expect("ip addr"), vec![own_cidr]);
    })
    .expect("run in namespace");
}

#[test]
fn a_moved_vip_is_announced_by_gratuitous_arp_and_the_client_follows_without_asking() {
    let lab = Lab::new(&["hostA", "hostB", "client"]).expect("lab");
    let (a, b, client) = (lab.host("hostA"), lab.host("hostB"), lab.host("client"));
    let vip = lab.spare_ip(1);
    let mac_a = a.mac().expect("hostA MAC");
    let mac_b = b.mac().expect("hostB MAC");
    assert_ne!(mac_a, mac_b);
    let silent = ArpConfig {
        count: 0,
        interval: Duration::ZERO,
    };

    // The VIP on hostA; the client reaches it and learns hostA's MAC.
    assert!(set_vip(a, vip, true, ArpConfig::default()));
    assert!(
        client.ping(vip, PING_TIMEOUT).expect("ping"),
        "VIP on hostA unreachable"
    );
    let entry = client
        .neighbour(vip)
        .expect("ip neigh")
        .expect("an entry after ping");
    assert_eq!(entry.lladdr.as_deref(), Some(mac_a.as_str()), "{entry:?}");

    // Control: moved to hostB without announcement, the client keeps hostA's MAC.
    assert!(set_vip(a, vip, false, ArpConfig::default()));
    assert!(set_vip(b, vip, true, silent));
    std::thread::sleep(Duration::from_millis(500));
    let entry = client
        .neighbour(vip)
        .expect("ip neigh")
        .expect("entry kept");
    assert_eq!(entry.lladdr.as_deref(), Some(mac_a.as_str()), "{entry:?}");

    // Re-added on hostB with the gratuitous ARP burst: the client, which sent nothing since
    // its ping, now has hostB's MAC...
    assert!(set_vip(b, vip, false, silent));
    assert!(set_vip(b, vip, true, ArpConfig::default()));
    let entry = wait_neighbour_mac(client, vip, &mac_b, Duration::from_secs(2));
    assert_eq!(
        entry.as_ref().and_then(|e| e.lladdr.as_deref()),
        Some(mac_b.as_str()),
        "client's entry after the burst: {entry:?}"
    );

    // ...and reaches the VIP there.
    assert!(
        client.ping(vip, PING_TIMEOUT).expect("ping"),
        "VIP on hostB unreachable"
    );
    let entry = client.neighbour(vip).expect("ip neigh").expect("entry");
    assert_eq!(entry.lladdr.as_deref(), Some(mac_b.as_str()), "{entry:?}");
}

#[test]
fn the_burst_on_the_wire_is_five_rounds_of_request_and_reply_and_a_repeated_add_sends_nothing() {
    let lab = Lab::new(&["db1", "client"]).expect("lab");
    let (db, client) = (lab.host("db1"), lab.host("client"));
    let vip = lab.spare_ip(2);
    let mac = parse_mac(&db.mac().expect("MAC"));
    let interval = Duration::from_millis(40);
    let is_for_vip = |frame: &Vec<u8>| frame.len() >= 42 && frame[28..32] == vip.octets();

    let capture = PacketCapture::open(&client.ns, HOST_INTERFACE, ETHERTYPE_ARP).expect("capture");
    let started = Instant::now();
    assert!(set_vip(db, vip, true, ArpConfig { count: 5, interval }));
    let elapsed = started.elapsed();
    let frames: Vec<Vec<u8>> = capture
        .frames(Duration::from_millis(500))
        .expect("frames")
        .into_iter()
        .filter(is_for_vip)
        .collect();

    let request = gratuitous_frame(ArpOp::Request, mac, vip).to_vec();
    let reply = gratuitous_frame(ArpOp::Reply, mac, vip).to_vec();
    let expected: Vec<Vec<u8>> = (0..5)
        .flat_map(|_| [request.clone(), reply.clone()])
        .collect();
    assert_eq!(frames, expected);
    // Four pauses between five rounds: add waited for the whole burst.
    assert!(elapsed >= interval * 4, "add returned after {elapsed:?}");

    assert!(
        !set_vip(db, vip, true, ArpConfig::default()),
        "already there"
    );
    let again: Vec<Vec<u8>> = capture
        .frames(Duration::from_millis(400))
        .expect("frames")
        .into_iter()
        .filter(is_for_vip)
        .collect();
    assert!(again.is_empty(), "a no-op add sent {} frames", again.len());
}

#[test]
fn a_missing_interface_is_no_interface() {
    let lab = Lab::new(&["db1"]).expect("lab");
    let host = lab.host("db1");
    let vip = IpAddr::V4(lab.spare_ip(3));

    host.run_async(|| async {
        for name in ["nosuch0", "a-name-longer-than-ifnamsiz"] {
            match NetlinkVips::new(name).await {
                Err(VipError::NoInterface(n)) => assert_eq!(n, name),
                other => panic!("{name}: expected NoInterface, got {other:?}"),
            }
        }

        // An interface that disappears after construction.
        host.exec(&[
            "ip", "link", "add", "tmp0", "type", "veth", "peer", "name", "tmp1",
        ])
        .expect("add tmp0");
        let vips = NetlinkVips::new("tmp0").await.expect("new on tmp0");
        host.exec(&["ip", "link", "del", "tmp0"]).expect("del tmp0");
        assert!(matches!(vips.add(vip).await, Err(VipError::NoInterface(n)) if n == "tmp0"));
        assert!(matches!(vips.remove(vip).await, Err(VipError::NoInterface(n)) if n == "tmp0"));
        assert!(matches!(vips.configured().await, Err(VipError::NoInterface(n)) if n == "tmp0"));
        let message = NetlinkVips::new("nosuch0")
            .await
            .expect_err("missing")
            .to_string();
        assert_eq!(message, "interface 'nosuch0' does not exist");
    })
    .expect("run in namespace");
}

#[test]
fn ipv6_vips_are_refused_and_nothing_is_configured() {
    let lab = Lab::new(&["db1"]).expect("lab");
    let host = lab.host("db1");
    let v6 = IpAddr::V6(Ipv6Addr::new(0xfd00, 0x213, 0, 0, 0, 0, 0, 1));

    host.run_async(|| async {
        let vips = NetlinkVips::new(HOST_INTERFACE).await.expect("new");
        assert!(matches!(vips.add(v6).await, Err(VipError::NotIpv4(ip)) if ip == v6));
        assert!(matches!(vips.remove(v6).await, Err(VipError::NotIpv4(ip)) if ip == v6));
        let configured = vips.configured().await.expect("configured");
        assert!(!configured.contains(&v6), "{configured:?}");
        let shown = host
            .exec(&["ip", "-6", "addr", "show", "dev", HOST_INTERFACE])
            .expect("ip -6 addr");
        assert!(!shown.contains("fd00:213::1"), "{shown}");
    })
    .expect("run in namespace");
}

#[test]
fn a_failed_burst_is_sent_again_by_the_next_add_and_then_not_again() {
    let lab = Lab::new(&["db1", "client"]).expect("lab");
    let (db, client) = (lab.host("db1"), lab.host("client"));
    let vip = lab.spare_ip(5);
    let mac = parse_mac(&db.mac().expect("MAC"));
    let is_for_vip = |frame: &Vec<u8>| frame.len() >= 42 && frame[28..32] == vip.octets();
    let capture = PacketCapture::open(&client.ns, HOST_INTERFACE, ETHERTYPE_ARP).expect("capture");
    let arp = ArpConfig {
        count: 2,
        interval: Duration::from_millis(10),
    };

    db.run_async(|| async {
        let vips = NetlinkVips::new(HOST_INTERFACE)
            .await
            .expect("new")
            .with_arp(arp);
        // A link that is down cannot send: the address goes on, the burst fails.
        db.exec(&["ip", "link", "set", HOST_INTERFACE, "down"])
            .expect("link down");
        match vips.add(vip.into()).await {
            Err(VipError::Arp { ip, reason, .. }) => {
                assert_eq!(ip, IpAddr::from(vip));
                assert!(reason.contains("down"), "{reason}");
            }
            other => panic!("add on a down link: {other:?}"),
        }
        assert!(vips
            .configured()
            .await
            .expect("configured")
            .contains(&vip.into()));
        // Still failing: still an error, still pending.
        assert!(matches!(
            vips.add(vip.into()).await,
            Err(VipError::Arp { .. })
        ));

        db.exec(&["ip", "link", "set", HOST_INTERFACE, "up"])
            .expect("link up");
        assert!(
            !vips.add(vip.into()).await.expect("the retry goes out"),
            "the address was there already"
        );
        let frames: Vec<Vec<u8>> = capture
            .frames(Duration::from_millis(300))
            .expect("frames")
            .into_iter()
            .filter(is_for_vip)
            .collect();
        let request = gratuitous_frame(ArpOp::Request, mac, vip).to_vec();
        let reply = gratuitous_frame(ArpOp::Reply, mac, vip).to_vec();
        assert_eq!(
            frames,
            [request.clone(), reply.clone(), request, reply],
            "the retry is a whole burst"
        );

        assert!(!vips.add(vip.into()).await.expect("no-op"));
        let again = capture
            .frames(Duration::from_millis(300))
            .expect("frames")
            .into_iter()
            .filter(is_for_vip)
            .count();
        assert_eq!(again, 0, "an announced VIP is not announced again");
    })
    .expect("run in namespace");
}
