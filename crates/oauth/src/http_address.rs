//! Which IP addresses are globally reachable, and so fit to be a provider endpoint:
//! the IANA special-purpose ranges (RFC 6890) for IPv4 and IPv6, IPv6 forms that embed
//! an IPv4 address judged by that address.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Whether an address is globally reachable, i.e. fit to be a provider endpoint.
///
/// Refused: unspecified, loopback, private (RFC 1918), shared/CGNAT (RFC 6598),
/// link-local (which holds the cloud metadata address 169.254.169.254), IETF protocol
/// assignments, documentation and benchmarking ranges, multicast, reserved and
/// broadcast; in IPv6 also unique-local (fc00::/7, which holds AWS's fd00:ec2::254),
/// site-local, discard, and any IPv6 form that embeds a refused IPv4 address
/// (IPv4-mapped, NAT64, 6to4). See the IANA special-purpose address registries
/// (RFC 6890).
pub fn is_global(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_global_v4(v4),
        IpAddr::V6(v6) => is_global_v6(v6),
    }
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], prefix: u32) -> bool {
    let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
    u32::from(ip) & mask == u32::from(Ipv4Addr::from(net)) & mask
}

fn is_global_v4(ip: Ipv4Addr) -> bool {
    const REFUSED: &[([u8; 4], u32)] = &[
        ([0, 0, 0, 0], 8),       // "this network", includes the unspecified address
        ([10, 0, 0, 0], 8),      // private, RFC 1918
        ([100, 64, 0, 0], 10),   // shared address space (CGNAT), RFC 6598
        ([127, 0, 0, 0], 8),     // loopback
        ([169, 254, 0, 0], 16),  // link-local, incl. cloud metadata 169.254.169.254
        ([172, 16, 0, 0], 12),   // private, RFC 1918
        ([192, 0, 0, 0], 24),    // IETF protocol assignments, RFC 6890
        ([192, 0, 2, 0], 24),    // documentation TEST-NET-1, RFC 5737
        ([192, 88, 99, 0], 24),  // deprecated 6to4 relay anycast, RFC 7526
        ([192, 168, 0, 0], 16),  // private, RFC 1918
        ([198, 18, 0, 0], 15),   // benchmarking, RFC 2544
        ([198, 51, 100, 0], 24), // documentation TEST-NET-2
        ([203, 0, 113, 0], 24),  // documentation TEST-NET-3
        ([224, 0, 0, 0], 4),     // multicast
        ([240, 0, 0, 0], 4),     // reserved, incl. broadcast 255.255.255.255
    ];
    !REFUSED.iter().any(|&(net, prefix)| in_v4(ip, net, prefix))
}

fn in_v6(ip: Ipv6Addr, net: [u16; 8], prefix: u32) -> bool {
    let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
    u128::from(ip) & mask == u128::from(Ipv6Addr::from(net)) & mask
}

fn embedded_v4(ip: Ipv6Addr, shift: u32) -> Ipv4Addr {
    // Truncation is the point: the 32 bits at `shift` are the embedded address.
    Ipv4Addr::from(((u128::from(ip) >> shift) & 0xffff_ffff) as u32)
}

fn is_global_v6(ip: Ipv6Addr) -> bool {
    // IPv4-mapped ::ffff:a.b.c.d (RFC 4291 §2.5.5.2) and NAT64 64:ff9b::/96 (RFC 6052)
    // reach the embedded IPv4 address, so they are judged by it.
    if in_v6(ip, [0, 0, 0, 0, 0, 0xffff, 0, 0], 96)
        || in_v6(ip, [0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96)
    {
        return is_global_v4(embedded_v4(ip, 0));
    }
    // 6to4 2002::/16 (RFC 3056) carries the IPv4 address in bits 16..48.
    if in_v6(ip, [0x2002, 0, 0, 0, 0, 0, 0, 0], 16) {
        return is_global_v4(embedded_v4(ip, 80));
    }
    const REFUSED: &[([u16; 8], u32)] = &[
        ([0x2001, 0, 0, 0, 0, 0, 0, 0], 23), // IETF protocol assignments (Teredo, ORCHID, ...)
        ([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32), // documentation, RFC 3849
        ([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20), // documentation, RFC 9637
    ];
    // Only 2000::/3 is allocated global unicast; everything else (::, ::1, the
    // deprecated IPv4-compatible ::/96, 100::/64 discard, fc00::/7 unique-local,
    // fe80::/10 link-local, fec0::/10 site-local, ff00::/8 multicast) is not global.
    in_v6(ip, [0x2000, 0, 0, 0, 0, 0, 0, 0], 3)
        && !REFUSED.iter().any(|&(net, prefix)| in_v6(ip, net, prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn global(s: &str) -> bool {
        is_global(s.parse().unwrap_or_else(|e| panic!("{s}: {e}")))
    }

    #[test]
    fn public_addresses_are_global() {
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "140.82.112.3",
            "172.15.255.255",
            "172.32.0.1",
            "100.63.255.255",
            "100.128.0.1",
            "2606:4700:4700::1111",
            "2a00:1450:4001:80b::200e",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert!(global(ip), "{ip} should be global");
        }
    }

    #[test]
    fn loopback_private_link_local_and_special_ranges_are_not_global() {
        for ip in [
            "0.0.0.0",
            "127.0.0.1",
            "127.255.255.254",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.100.100.200",
            "192.0.0.8",
            "192.0.2.1",
            "198.51.100.7",
            "203.0.113.9",
            "198.18.0.1",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::127.0.0.1",
            "fe80::1",
            "fc00::1",
            "fd00:ec2::254",
            "fec0::1",
            "ff02::1",
            "100::1",
            "2001:db8::1",
            "3fff::1",
            "2001::1",
        ] {
            assert!(!global(ip), "{ip} should not be global");
        }
    }

    #[test]
    fn ipv6_forms_embedding_a_refused_ipv4_address_are_not_global() {
        for ip in [
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:10.0.0.1",
            "64:ff9b::7f00:1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::1",
            "2002:a9fe:a9fe::",
        ] {
            assert!(!global(ip), "{ip} should not be global");
        }
    }
}
