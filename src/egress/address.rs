//! Which addresses a webhook may reach: only globally routable ones.
//!
//! Pure and table-driven. [`classify`] decides one address against the special-purpose blocks
//! of the IANA IPv4 and IPv6 Special-Purpose Address Registries (RFC 6890 and its updates) and
//! the transition forms that carry an IPv4 inside an IPv6 address; [`literal_host`] finds the
//! address a URL names when its host is an IP literal, in whatever spelling a parser accepts.
//! This module does not resolve names, read the allow-list or connect: its caller checks here
//! every resolved address the operator's allow-list does not name, and connects only to one
//! that passed.
//!
//! # Transition forms
//!
//! Every IPv6 form that carries an IPv4 is denied when that IPv4 is (reported as
//! [`Denied::Carried`]): IPv4-mapped `::ffff:0:0/96`, IPv4-compatible `::/96`, 6to4
//! `2002::/16`, NAT64 `64:ff9b::/96` and local-use NAT64 `64:ff9b:1::/48` (IPv4 in the last 32
//! bits), Teredo `2001::/32` (both the server and the client IPv4) and ISATAP (interface id
//! `0000:5efe` or `0200:5efe`, under any prefix). When an address reads as two forms (a 6to4
//! or Teredo address with an ISATAP-shaped interface id), every reading is checked.
//!
//! When the carried IPv4 is public, the form decides:
//! - IPv4-mapped and NAT64 `64:ff9b::/96` pass: the host's stack or the network's translator
//!   delivers them to that very IPv4, so they reach nothing the IPv4 itself does not.
//! - 6to4 and Teredo pass: they are routed as IPv6 towards the public IPv4 (RFC 3056, RFC 4380).
//! - ISATAP is judged as IPv6 by its prefix too (`fe80::5efe:…` stays link-local).
//! - IPv4-compatible is denied: deprecated (RFC 4291) and routed, if at all, by whatever
//!   automatic tunnel the host has configured.
//! - Local-use NAT64 is denied: not globally reachable, and each network chooses where its
//!   translator reads the IPv4 (RFC 6052 allows several layouts), so Herald cannot know which
//!   IPv4 it reaches. A network that translates through it names it in the allow-list.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use url::{Host, Url};

/// Why an address may not be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// The address lies in a block that is not globally reachable.
    Block(Block),
    /// An IPv6 transition form carries an IPv4 address that is denied.
    Carried {
        form: Transition,
        ipv4: Ipv4Addr,
        block: Block,
    },
}

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Block(block) => block.fmt(f),
            Self::Carried { form, ipv4, block } => write!(f, "{form} carrying {ipv4}: {block}"),
        }
    }
}

impl std::error::Error for Denied {}

/// A special-purpose address block, shown as its name and CIDR, e.g. `loopback (127.0.0.0/8)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block {
    network: IpAddr,
    prefix_len: u8,
    name: &'static str,
    /// Said after the CIDR: what the block is known for, or that it is deprecated.
    note: Option<&'static str>,
}

impl Block {
    const fn v4(octets: [u8; 4], prefix_len: u8, name: &'static str) -> Self {
        let [a, b, c, d] = octets;
        Self {
            network: IpAddr::V4(Ipv4Addr::new(a, b, c, d)),
            prefix_len,
            name,
            note: None,
        }
    }

    const fn v6(segments: [u16; 8], prefix_len: u8, name: &'static str) -> Self {
        let [a, b, c, d, e, f, g, h] = segments;
        Self {
            network: IpAddr::V6(Ipv6Addr::new(a, b, c, d, e, f, g, h)),
            prefix_len,
            name,
            note: None,
        }
    }

    const fn note(self, note: &'static str) -> Self {
        Self {
            note: Some(note),
            ..self
        }
    }

    fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip) {
            (IpAddr::V4(network), IpAddr::V4(ip)) => {
                let differing = u32::from(network) ^ u32::from(ip);
                differing
                    .checked_shr(32 - u32::from(self.prefix_len))
                    .unwrap_or(0)
                    == 0
            }
            (IpAddr::V6(network), IpAddr::V6(ip)) => in_prefix(ip, network, self.prefix_len),
            _ => false,
        }
    }
}

impl fmt::Display for Block {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self {
            network,
            prefix_len,
            name,
            note,
        } = self;
        match note {
            Some(note) => write!(f, "{name} ({network}/{prefix_len}, {note})"),
            None => write!(f, "{name} ({network}/{prefix_len})"),
        }
    }
}

/// IPv4 blocks that are not globally reachable: the IANA IPv4 Special-Purpose Address
/// Registry, multicast (RFC 5771) and the former 6to4 relay anycast (RFC 7526). The first
/// match names the block, so a narrower block precedes the one it lies in.
const IPV4_DENIED: &[Block] = &[
    Block::v4([0, 0, 0, 0], 32, "unspecified"),
    Block::v4([0, 0, 0, 0], 8, "this network"),
    Block::v4([10, 0, 0, 0], 8, "private"),
    Block::v4([100, 64, 0, 0], 10, "shared address space").note("carrier-grade NAT"),
    Block::v4([127, 0, 0, 0], 8, "loopback"),
    Block::v4([169, 254, 0, 0], 16, "link-local").note("cloud metadata"),
    Block::v4([172, 16, 0, 0], 12, "private"),
    // The registry marks 192.0.0.9 and 192.0.0.10 (PCP and TURN anycast) reachable; they are
    // service addresses, never webhook receivers, so the whole block is denied.
    Block::v4([192, 0, 0, 0], 24, "IETF protocol assignments"),
    Block::v4([192, 0, 2, 0], 24, "documentation"),
    Block::v4([192, 88, 99, 0], 24, "6to4 relay anycast").note("deprecated"),
    Block::v4([192, 168, 0, 0], 16, "private"),
    Block::v4([198, 18, 0, 0], 15, "benchmarking"),
    Block::v4([198, 51, 100, 0], 24, "documentation"),
    Block::v4([203, 0, 113, 0], 24, "documentation"),
    Block::v4([224, 0, 0, 0], 4, "multicast"),
    Block::v4([255, 255, 255, 255], 32, "broadcast"),
    Block::v4([240, 0, 0, 0], 4, "reserved"),
];

/// IPv6 blocks that are not globally reachable, from the IANA IPv6 Special-Purpose Address
/// Registry and the IPv6 Address Space registry; first match names the block. Everything
/// outside global unicast is denied anyway ([`GLOBAL_UNICAST`]): the rows there only give the
/// refusal a precise name. IPv4-mapped, NAT64 and Teredo addresses never reach this table
/// once their IPv4 has passed (see the module docs).
const IPV6_DENIED: &[Block] = &[
    Block::v6([0, 0, 0, 0, 0, 0, 0, 0], 128, "unspecified"),
    Block::v6([0, 0, 0, 0, 0, 0, 0, 1], 128, "loopback"),
    Block::v6([0, 0, 0, 0, 0, 0, 0, 0], 96, "IPv4-compatible").note("deprecated"),
    Block::v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48, "local-use NAT64"),
    Block::v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64, "discard-only"),
    Block::v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7, "unique-local")
        .note("fd00:ec2::254 cloud metadata"),
    Block::v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10, "link-local"),
    Block::v6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10, "site-local").note("deprecated"),
    Block::v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8, "multicast"),
    // Inside global unicast. 2001::/23 holds anycast service addresses (PCP, TURN, AMT, AS112)
    // and identifiers that are not locators (ORCHID, ORCHIDv2, drone DETs); the registry marks
    // some reachable, but none is a webhook receiver, so only Teredo (2001::/32) is let through.
    Block::v6([0x2001, 0x2, 0, 0, 0, 0, 0, 0], 48, "benchmarking"),
    Block::v6([0x2001, 0x10, 0, 0, 0, 0, 0, 0], 28, "ORCHID").note("deprecated"),
    Block::v6([0x2001, 0x20, 0, 0, 0, 0, 0, 0], 28, "ORCHIDv2"),
    Block::v6(
        [0x2001, 0, 0, 0, 0, 0, 0, 0],
        23,
        "IETF protocol assignments",
    ),
    Block::v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32, "documentation"),
    Block::v6([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20, "documentation"),
    Block::v6([0x5f00, 0, 0, 0, 0, 0, 0, 0], 16, "segment routing SIDs"),
];

/// Global unicast `2000::/3`; an IPv6 address outside it is refused as this block.
const GLOBAL_UNICAST: Block = Block::v6([0x2000, 0, 0, 0, 0, 0, 0, 0], 3, "outside global unicast");

/// An IPv6 form that carries an IPv4 address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// `::ffff:0:0/96` (RFC 4291).
    Mapped,
    /// `::/96`, deprecated (RFC 4291).
    Compatible,
    /// `2002::/16`, the IPv4 in bits 16..48 (RFC 3056).
    SixToFour,
    /// The well-known prefix `64:ff9b::/96` (RFC 6052).
    Nat64,
    /// The local-use prefix `64:ff9b:1::/48` (RFC 8215).
    Nat64Local,
    /// `2001::/32`: the server's IPv4 in bits 32..64, the client's inverted in the last 32
    /// (RFC 4380).
    Teredo,
    /// Interface id `0000:5efe` or `0200:5efe` followed by the IPv4 (RFC 5214).
    Isatap,
}

impl fmt::Display for Transition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Mapped => "IPv4-mapped IPv6",
            Self::Compatible => "IPv4-compatible IPv6",
            Self::SixToFour => "6to4 IPv6",
            Self::Nat64 => "NAT64 IPv6",
            Self::Nat64Local => "local-use NAT64 IPv6",
            Self::Teredo => "Teredo IPv6",
            Self::Isatap => "ISATAP IPv6",
        })
    }
}

/// Where a form named by its prefix keeps the IPv4.
struct Layout {
    form: Transition,
    prefix: Ipv6Addr,
    prefix_len: u8,
    /// The bit at which the 32 bits of the IPv4 start.
    ipv4_at: u32,
    /// XORed over those bits: Teredo stores the client's address inverted.
    obfuscation: u32,
}

const PREFIX_FORMS: &[Layout] = &[
    Layout {
        form: Transition::Mapped,
        prefix: Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0, 0),
        prefix_len: 96,
        ipv4_at: 96,
        obfuscation: 0,
    },
    Layout {
        form: Transition::Compatible,
        prefix: Ipv6Addr::UNSPECIFIED,
        prefix_len: 96,
        ipv4_at: 96,
        obfuscation: 0,
    },
    Layout {
        form: Transition::SixToFour,
        prefix: Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0),
        prefix_len: 16,
        ipv4_at: 16,
        obfuscation: 0,
    },
    Layout {
        form: Transition::Nat64,
        prefix: Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0),
        prefix_len: 96,
        ipv4_at: 96,
        obfuscation: 0,
    },
    Layout {
        form: Transition::Nat64Local,
        prefix: Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, 0, 0),
        prefix_len: 48,
        ipv4_at: 96,
        obfuscation: 0,
    },
    Layout {
        form: Transition::Teredo,
        prefix: Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0),
        prefix_len: 32,
        ipv4_at: 96,
        obfuscation: 0xffff_ffff,
    },
];

/// The Teredo server's IPv4 starts at this bit; the client's is the one in [`PREFIX_FORMS`].
const TEREDO_SERVER_AT: u32 = 32;

/// Whether a webhook may reach `ip`.
///
/// # Errors
///
/// [`Denied`] naming the block, when `ip` is not globally routable or is an IPv6 form carrying
/// an IPv4 that is not.
pub fn classify(ip: IpAddr) -> Result<(), Denied> {
    match ip {
        IpAddr::V4(ip) => ipv4_block(ip).map_or(Ok(()), |block| Err(Denied::Block(block))),
        IpAddr::V6(ip) => classify_v6(ip),
    }
}

fn ipv4_block(ip: Ipv4Addr) -> Option<Block> {
    IPV4_DENIED
        .iter()
        .find(|block| block.contains(IpAddr::V4(ip)))
        .copied()
}

fn classify_v6(ip: Ipv6Addr) -> Result<(), Denied> {
    for (form, ipv4) in carried(ip) {
        if let Some(block) = ipv4_block(ipv4) {
            return Err(Denied::Carried { form, ipv4, block });
        }
    }
    // The carried IPv4 is public; these forms are delivered to it (see the module docs).
    if let Some(Layout {
        form: Transition::Mapped | Transition::Nat64 | Transition::SixToFour | Transition::Teredo,
        ..
    }) = prefix_form(ip)
    {
        return Ok(());
    }
    let ip = IpAddr::V6(ip);
    if let Some(block) = IPV6_DENIED.iter().find(|block| block.contains(ip)) {
        return Err(Denied::Block(*block));
    }
    if !GLOBAL_UNICAST.contains(ip) {
        return Err(Denied::Block(GLOBAL_UNICAST));
    }
    Ok(())
}

/// The IPv4 an IPv6 transition form carries, and the form.
///
/// For Teredo this is the client's address (de-obfuscated), where its traffic goes; an
/// address that also has an ISATAP-shaped interface id is reported as the form its prefix
/// names. [`classify`] checks every reading, the Teredo server's address included.
pub fn embedded_ipv4(ip: Ipv6Addr) -> Option<(Transition, Ipv4Addr)> {
    carried(ip).next()
}

/// Every (form, IPv4) reading of `ip`: the form its prefix names first, then the Teredo
/// server, then an ISATAP interface id.
fn carried(ip: Ipv6Addr) -> impl Iterator<Item = (Transition, Ipv4Addr)> {
    let prefixed = prefix_form(ip)
        .map(|layout| (layout.form, ipv4_at(ip, layout.ipv4_at, layout.obfuscation)));
    let teredo_server = prefixed
        .filter(|(form, _)| *form == Transition::Teredo)
        .map(|_| (Transition::Teredo, ipv4_at(ip, TEREDO_SERVER_AT, 0)));
    // RFC 5214 sets the u bit (0x02 of the first octet) for a global IPv4; the g bit (0x01)
    // is ignored too, as no sender should get through by flipping it.
    let isatap = (ip.segments()[4] & 0xfcff == 0 && ip.segments()[5] == 0x5efe)
        .then(|| (Transition::Isatap, ipv4_at(ip, 96, 0)));
    prefixed.into_iter().chain(teredo_server).chain(isatap)
}

fn prefix_form(ip: Ipv6Addr) -> Option<&'static Layout> {
    // `::` and `::1` are the unspecified and loopback addresses, not IPv4-compatible ones.
    if ip.is_unspecified() || ip.is_loopback() {
        return None;
    }
    PREFIX_FORMS
        .iter()
        .find(|layout| in_prefix(ip, layout.prefix, layout.prefix_len))
}

fn in_prefix(ip: Ipv6Addr, prefix: Ipv6Addr, prefix_len: u8) -> bool {
    let differing = u128::from(ip) ^ u128::from(prefix);
    differing
        .checked_shr(128 - u32::from(prefix_len))
        .unwrap_or(0)
        == 0
}

fn ipv4_at(ip: Ipv6Addr, bit: u32, obfuscation: u32) -> Ipv4Addr {
    // Truncation keeps exactly the 32 bits that start at `bit`.
    let bits = (u128::from(ip) >> (96 - bit)) as u32;
    Ipv4Addr::from(bits ^ obfuscation)
}

/// The address `url` names when its host is an IP literal.
///
/// The URL parser already reads every spelling of an IPv4 that browsers accept (decimal
/// `2130706433`, octal `0177.0.0.1`, hex `0x7f.1`, shortened `127.1`, a trailing dot,
/// percent-encoded or full-width digits) and bracketed IPv6 (a zone id makes the URL
/// unparseable). A domain that the C library's `inet_aton` would still read as an IPv4
/// (`127.0.0.1..`, or any host of a scheme the parser leaves opaque) counts as a literal too.
pub fn literal_host(url: &Url) -> Option<IpAddr> {
    match url.host()? {
        Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
        Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
        Host::Domain(name) => inet_aton(name).map(IpAddr::V4),
    }
}

/// Reads `host` as `inet_aton` does: one to four parts, each decimal, octal (a leading `0`)
/// or hexadecimal (`0x`), the last filling the bytes left; trailing dots are ignored.
fn inet_aton(host: &str) -> Option<Ipv4Addr> {
    let parts = host
        .trim_end_matches('.')
        .split('.')
        .map(inet_aton_part)
        .collect::<Option<Vec<u32>>>()?;
    let (last, leading) = parts.split_last()?;
    if leading.len() > 3 || leading.iter().any(|&part| part > 0xff) {
        return None;
    }
    let last_bits = 32 - 8 * leading.len() as u32;
    if last
        .checked_shr(last_bits)
        .is_some_and(|overflow| overflow != 0)
    {
        return None;
    }
    let high = leading
        .iter()
        .zip([24, 16, 8])
        .fold(0, |address, (&part, shift)| address | part << shift);
    Some(Ipv4Addr::from(high | last))
}

fn inet_aton_part(part: &str) -> Option<u32> {
    let (digits, radix) = match part.strip_prefix("0x").or(part.strip_prefix("0X")) {
        // `0x` alone is zero.
        Some("") => return Some(0),
        Some(hex) => (hex, 16),
        None if part.len() > 1 && part.starts_with('0') => (&part[1..], 8),
        None => (part, 10),
    };
    // `from_str_radix` would also take a sign.
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    u32::from_str_radix(digits, radix).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    use rand::Rng;

    /// `None`: the address may be reached; `Some`: the refusal, as shown.
    const ADDRESSES: &[(&str, Option<&str>)] = &[
        // IPv4
        ("0.0.0.0", Some("unspecified (0.0.0.0/32)")),
        ("0.1.2.3", Some("this network (0.0.0.0/8)")),
        ("10.0.0.1", Some("private (10.0.0.0/8)")),
        ("10.255.255.255", Some("private (10.0.0.0/8)")),
        (
            "100.64.0.1",
            Some("shared address space (100.64.0.0/10, carrier-grade NAT)"),
        ),
        (
            "100.127.255.255",
            Some("shared address space (100.64.0.0/10, carrier-grade NAT)"),
        ),
        ("100.63.255.255", None),
        ("100.128.0.0", None),
        ("127.0.0.1", Some("loopback (127.0.0.0/8)")),
        ("127.255.255.254", Some("loopback (127.0.0.0/8)")),
        (
            "169.254.169.254",
            Some("link-local (169.254.0.0/16, cloud metadata)"),
        ),
        (
            "169.254.0.1",
            Some("link-local (169.254.0.0/16, cloud metadata)"),
        ),
        ("172.16.0.1", Some("private (172.16.0.0/12)")),
        ("172.31.255.255", Some("private (172.16.0.0/12)")),
        ("172.15.255.255", None),
        ("172.32.0.0", None),
        (
            "192.0.0.8",
            Some("IETF protocol assignments (192.0.0.0/24)"),
        ),
        (
            "192.0.0.170",
            Some("IETF protocol assignments (192.0.0.0/24)"),
        ),
        ("192.0.2.1", Some("documentation (192.0.2.0/24)")),
        (
            "192.88.99.1",
            Some("6to4 relay anycast (192.88.99.0/24, deprecated)"),
        ),
        ("192.168.1.1", Some("private (192.168.0.0/16)")),
        ("198.18.0.1", Some("benchmarking (198.18.0.0/15)")),
        ("198.19.255.255", Some("benchmarking (198.18.0.0/15)")),
        ("198.51.100.7", Some("documentation (198.51.100.0/24)")),
        ("203.0.113.9", Some("documentation (203.0.113.0/24)")),
        ("224.0.0.1", Some("multicast (224.0.0.0/4)")),
        ("239.255.255.250", Some("multicast (224.0.0.0/4)")),
        ("240.0.0.1", Some("reserved (240.0.0.0/4)")),
        ("255.255.255.254", Some("reserved (240.0.0.0/4)")),
        ("255.255.255.255", Some("broadcast (255.255.255.255/32)")),
        ("8.8.8.8", None),
        ("1.1.1.1", None),
        ("192.0.3.1", None),
        ("223.255.255.255", None),
        // IPv6
        ("::", Some("unspecified (::/128)")),
        ("::1", Some("loopback (::1/128)")),
        (
            "fd00:ec2::254",
            Some("unique-local (fc00::/7, fd00:ec2::254 cloud metadata)"),
        ),
        (
            "fc00::1",
            Some("unique-local (fc00::/7, fd00:ec2::254 cloud metadata)"),
        ),
        ("fe80::1", Some("link-local (fe80::/10)")),
        ("febf:ffff::1", Some("link-local (fe80::/10)")),
        ("fec0::1", Some("site-local (fec0::/10, deprecated)")),
        ("ff02::1", Some("multicast (ff00::/8)")),
        ("ff0e::1", Some("multicast (ff00::/8)")),
        ("100::1", Some("discard-only (100::/64)")),
        ("2001:db8::1", Some("documentation (2001:db8::/32)")),
        ("3fff::1", Some("documentation (3fff::/20)")),
        ("3fff:fff:ffff::1", Some("documentation (3fff::/20)")),
        ("3fff:1000::1", None),
        ("2001:2::1", Some("benchmarking (2001:2::/48)")),
        ("2001:10::1", Some("ORCHID (2001:10::/28, deprecated)")),
        ("2001:20::1", Some("ORCHIDv2 (2001:20::/28)")),
        ("2001:1::1", Some("IETF protocol assignments (2001::/23)")),
        (
            "2001:4:112::1",
            Some("IETF protocol assignments (2001::/23)"),
        ),
        ("2001:200::1", None),
        ("5f00::1", Some("segment routing SIDs (5f00::/16)")),
        ("4000::1", Some("outside global unicast (2000::/3)")),
        ("::ffff:0:7f00:1", Some("outside global unicast (2000::/3)")),
        ("2606:4700:4700::1111", None),
        ("2001:4860:4860::8888", None),
        ("2a00:1450:4001::1", None),
        // IPv4-mapped: the published bypass, in both spellings.
        (
            "::ffff:127.0.0.1",
            Some("IPv4-mapped IPv6 carrying 127.0.0.1: loopback (127.0.0.0/8)"),
        ),
        (
            "::ffff:7f00:1",
            Some("IPv4-mapped IPv6 carrying 127.0.0.1: loopback (127.0.0.0/8)"),
        ),
        (
            "::ffff:a9fe:a9fe",
            Some(
                "IPv4-mapped IPv6 carrying 169.254.169.254: link-local (169.254.0.0/16, cloud metadata)",
            ),
        ),
        (
            "::ffff:10.0.0.1",
            Some("IPv4-mapped IPv6 carrying 10.0.0.1: private (10.0.0.0/8)"),
        ),
        (
            "::ffff:0.0.0.0",
            Some("IPv4-mapped IPv6 carrying 0.0.0.0: unspecified (0.0.0.0/32)"),
        ),
        ("::ffff:8.8.8.8", None),
        // IPv4-compatible
        (
            "::127.0.0.1",
            Some("IPv4-compatible IPv6 carrying 127.0.0.1: loopback (127.0.0.0/8)"),
        ),
        (
            "::2",
            Some("IPv4-compatible IPv6 carrying 0.0.0.2: this network (0.0.0.0/8)"),
        ),
        ("::8.8.8.8", Some("IPv4-compatible (::/96, deprecated)")),
        // 6to4
        (
            "2002:7f00:1::",
            Some("6to4 IPv6 carrying 127.0.0.1: loopback (127.0.0.0/8)"),
        ),
        (
            "2002:a9fe:a9fe::1",
            Some("6to4 IPv6 carrying 169.254.169.254: link-local (169.254.0.0/16, cloud metadata)"),
        ),
        (
            "2002:c0a8:101:1::1",
            Some("6to4 IPv6 carrying 192.168.1.1: private (192.168.0.0/16)"),
        ),
        ("2002:808:808::1", None),
        // NAT64
        (
            "64:ff9b::127.0.0.1",
            Some("NAT64 IPv6 carrying 127.0.0.1: loopback (127.0.0.0/8)"),
        ),
        (
            "64:ff9b::a00:1",
            Some("NAT64 IPv6 carrying 10.0.0.1: private (10.0.0.0/8)"),
        ),
        ("64:ff9b::8.8.8.8", None),
        (
            "64:ff9b:1::127.0.0.1",
            Some("local-use NAT64 IPv6 carrying 127.0.0.1: loopback (127.0.0.0/8)"),
        ),
        (
            "64:ff9b:1:abcd::a9fe:a9fe",
            Some(
                "local-use NAT64 IPv6 carrying 169.254.169.254: link-local (169.254.0.0/16, cloud metadata)",
            ),
        ),
        (
            "64:ff9b:1::8.8.8.8",
            Some("local-use NAT64 (64:ff9b:1::/48)"),
        ),
        // Teredo: server 8.8.8.8 with client 127.0.0.1, server 10.0.0.1 with client 8.8.8.8,
        // server 8.8.8.8 with client 1.1.1.1.
        (
            "2001:0:808:808:8000:ffff:80ff:fffe",
            Some("Teredo IPv6 carrying 127.0.0.1: loopback (127.0.0.0/8)"),
        ),
        (
            "2001:0:a00:1:8000:ffff:f7f7:f7f7",
            Some("Teredo IPv6 carrying 10.0.0.1: private (10.0.0.0/8)"),
        ),
        ("2001:0:808:808:8000:ffff:fefe:fefe", None),
        // ISATAP under any prefix, with the u bit clear and set; its prefix is judged too.
        (
            "2600::5efe:7f00:1",
            Some("ISATAP IPv6 carrying 127.0.0.1: loopback (127.0.0.0/8)"),
        ),
        (
            "2600::200:5efe:a00:1",
            Some("ISATAP IPv6 carrying 10.0.0.1: private (10.0.0.0/8)"),
        ),
        (
            "fe80::5efe:7f00:1",
            Some("ISATAP IPv6 carrying 127.0.0.1: loopback (127.0.0.0/8)"),
        ),
        ("2600::5efe:808:808", None),
        ("fe80::200:5efe:808:808", Some("link-local (fe80::/10)")),
        // Two readings: a public 6to4 whose interface id is an ISATAP one carrying loopback.
        (
            "2002:808:808::5efe:7f00:1",
            Some("ISATAP IPv6 carrying 127.0.0.1: loopback (127.0.0.0/8)"),
        ),
    ];

    #[test]
    fn every_listed_address_gets_its_verdict() {
        for &(text, expected) in ADDRESSES {
            let ip: IpAddr = text.parse().expect(text);
            let verdict = classify(ip).map_err(|denied| denied.to_string());
            assert_eq!(verdict.err().as_deref(), expected, "{text}");
        }
    }

    enum Expect {
        /// The host is this IP literal, which is refused.
        Denied(&'static str),
        /// The host is this IP literal, which may be reached.
        Allowed(&'static str),
        /// The host is a name.
        Name,
    }

    const URLS: &[(&str, Expect)] = &[
        ("http://2130706433/", Expect::Denied("127.0.0.1")),
        ("http://0177.0.0.1/", Expect::Denied("127.0.0.1")),
        ("http://017700000001/", Expect::Denied("127.0.0.1")),
        ("http://0x7f.1/", Expect::Denied("127.0.0.1")),
        ("http://0X7F000001/", Expect::Denied("127.0.0.1")),
        ("http://0x7f.0x0.0x0.0x1/", Expect::Denied("127.0.0.1")),
        ("http://127.1/", Expect::Denied("127.0.0.1")),
        ("http://127.0.0.1./", Expect::Denied("127.0.0.1")),
        // The parser keeps this one as a domain; `inet_aton` still reads it.
        ("http://127.0.0.1../", Expect::Denied("127.0.0.1")),
        ("http://%31%32%37.0.0.1/", Expect::Denied("127.0.0.1")),
        ("http://%30x7f.1/", Expect::Denied("127.0.0.1")),
        ("http://127.0.0.1%2e/", Expect::Denied("127.0.0.1")),
        ("http://１２７.０.０.１/", Expect::Denied("127.0.0.1")),
        ("http://127。0。0。1/", Expect::Denied("127.0.0.1")),
        ("HTTP://127.0.0.1:9464/metrics", Expect::Denied("127.0.0.1")),
        ("http:\\\\127.0.0.1\\x", Expect::Denied("127.0.0.1")),
        ("http://user:secret@127.1/", Expect::Denied("127.0.0.1")),
        ("http://0/", Expect::Denied("0.0.0.0")),
        ("http://0x/", Expect::Denied("0.0.0.0")),
        (
            "http://169.254.169.254/latest/meta-data/",
            Expect::Denied("169.254.169.254"),
        ),
        ("http://0xa9fea9fe/", Expect::Denied("169.254.169.254")),
        ("http://3232235777/", Expect::Denied("192.168.1.1")),
        ("http://0300.0250.1.1/", Expect::Denied("192.168.1.1")),
        // Bracketed IPv6 (the published bypass) and the forms carrying a forbidden IPv4.
        ("http://[::1]/", Expect::Denied("::1")),
        ("http://[0:0:0:0:0:0:0:1]:8080/", Expect::Denied("::1")),
        ("http://[::]/", Expect::Denied("::")),
        (
            "http://[::ffff:127.0.0.1]/",
            Expect::Denied("::ffff:127.0.0.1"),
        ),
        (
            "http://[::ffff:7f00:1]/",
            Expect::Denied("::ffff:127.0.0.1"),
        ),
        (
            "http://[0:0:0:0:0:ffff:127.0.0.1]/",
            Expect::Denied("::ffff:127.0.0.1"),
        ),
        ("http://[::127.0.0.1]/", Expect::Denied("::127.0.0.1")),
        ("http://[FE80::1]/", Expect::Denied("fe80::1")),
        (
            "http://[fd00:ec2::254]/latest/meta-data/",
            Expect::Denied("fd00:ec2::254"),
        ),
        ("http://[2002:7f00:1::]/", Expect::Denied("2002:7f00:1::")),
        (
            "http://[64:ff9b::7f00:1]/",
            Expect::Denied("64:ff9b::7f00:1"),
        ),
        (
            "http://[2001:0:808:808:8000:ffff:80ff:fffe]/",
            Expect::Denied("2001:0:808:808:8000:ffff:80ff:fffe"),
        ),
        (
            "http://[fe80::5efe:7f00:1]/",
            Expect::Denied("fe80::5efe:7f00:1"),
        ),
        // A scheme the parser leaves opaque keeps its host as text.
        ("foo://0x7f.1/", Expect::Denied("127.0.0.1")),
        ("foo://2130706433/", Expect::Denied("127.0.0.1")),
        ("foo://[::1]/", Expect::Denied("::1")),
        // Public literals are literals all the same.
        ("https://1.1.1.1/", Expect::Allowed("1.1.1.1")),
        (
            "https://[2606:4700:4700::1111]/",
            Expect::Allowed("2606:4700:4700::1111"),
        ),
        (
            "https://[::ffff:8.8.8.8]/",
            Expect::Allowed("::ffff:8.8.8.8"),
        ),
        (
            "https://[2002:808:808::1]/",
            Expect::Allowed("2002:808:808::1"),
        ),
        (
            "https://[64:ff9b::808:808]/",
            Expect::Allowed("64:ff9b::808:808"),
        ),
        // Names, including ones that only look numeric in part.
        ("https://example.com/", Expect::Name),
        ("https://0x7f.example.com/", Expect::Name),
        ("https://1.2.3.4.example/", Expect::Name),
        ("http://127.1:80@example.com/", Expect::Name),
        ("foo://1.2.3.4.5/", Expect::Name),
        ("foo://256.0.0.1/", Expect::Name),
        ("foo://+1/", Expect::Name),
        ("foo://08/", Expect::Name),
        ("foo://0x1g/", Expect::Name),
    ];

    #[test]
    fn every_listed_url_host_gets_its_verdict() {
        for (url, expected) in URLS {
            let host = literal_host(&Url::parse(url).expect(url));
            match *expected {
                Expect::Denied(ip) => {
                    assert_eq!(host, Some(ip.parse().unwrap()), "{url}");
                    assert!(classify(host.unwrap()).is_err(), "{url}");
                }
                Expect::Allowed(ip) => {
                    assert_eq!(host, Some(ip.parse().unwrap()), "{url}");
                    assert_eq!(classify(host.unwrap()), Ok(()), "{url}");
                }
                Expect::Name => assert_eq!(host, None, "{url}"),
            }
        }
    }

    /// These never parse, so they are refused before any address is looked at: a zone id
    /// (percent-encoded or not), and IPv4 spellings out of range.
    #[test]
    fn unparseable_literals_are_refused_by_the_parser() {
        for url in [
            "http://[fe80::1%25eth0]/",
            "http://[fe80::1%eth0]/",
            "http://4294967296/",
            "http://1.2.3.4.5/",
            "http://09.0.0.1/",
            "http://256.0.0.1/",
            "http://0x7f.0.0.1%00/",
        ] {
            assert!(Url::parse(url).is_err(), "{url}");
        }
    }

    /// Random IPv4 addresses, plus both ends of every denied block and their neighbours.
    fn ipv4_sample() -> Vec<Ipv4Addr> {
        let mut rng = rand::rng();
        let edges = IPV4_DENIED.iter().flat_map(|block| {
            let IpAddr::V4(network) = block.network else {
                unreachable!("IPv4 table")
            };
            let first = u32::from(network);
            let last = first
                | u32::MAX
                    .checked_shr(u32::from(block.prefix_len))
                    .unwrap_or(0);
            [first.wrapping_sub(1), first, last, last.wrapping_add(1)]
        });
        (0..20_000)
            .map(|_| rng.random::<u32>())
            .chain(edges)
            .map(Ipv4Addr::from)
            .collect()
    }

    #[test]
    fn ipv4_addresses_std_knows_as_special_are_denied() {
        for ip in ipv4_sample() {
            let special = ip.is_unspecified()
                || ip.is_loopback()
                || ip.is_private()
                || ip.is_link_local()
                || ip.is_multicast()
                || ip.is_broadcast()
                || ip.is_documentation();
            if special {
                assert!(classify(IpAddr::V4(ip)).is_err(), "{ip}");
            }
        }
    }

    fn ipv6(bits: u128) -> Ipv6Addr {
        Ipv6Addr::from(bits)
    }

    #[test]
    fn every_transition_form_inherits_the_verdict_of_its_ipv4() {
        let public_prefix = u128::from(Ipv6Addr::new(0x2600, 0, 0, 0, 0, 0, 0, 0));
        let public_teredo_server = u128::from(u32::from(Ipv4Addr::new(8, 8, 8, 8)));
        let public_teredo_client = u128::from(!u32::from(Ipv4Addr::new(1, 1, 1, 1)));
        for ipv4 in ipv4_sample() {
            let v4 = u128::from(u32::from(ipv4));
            let denied = ipv4_block(ipv4);
            // (form, address, whether the form itself passes a public IPv4)
            let forms = [
                (Transition::Mapped, ipv6(0xffff << 32 | v4), true),
                (Transition::Compatible, ipv6(v4), false),
                (
                    Transition::SixToFour,
                    ipv6(0x2002 << 112 | v4 << 80 | 1),
                    true,
                ),
                (Transition::Nat64, ipv6(0x64_ff9b << 96 | v4), true),
                (
                    Transition::Nat64Local,
                    ipv6(0x64_ff9b_0001 << 80 | v4),
                    false,
                ),
                (
                    Transition::Teredo,
                    ipv6(
                        0x2001 << 112
                            | public_teredo_server << 64
                            | 0x8000 << 48
                            | !v4 & 0xffff_ffff,
                    ),
                    true,
                ),
                (
                    Transition::Teredo,
                    ipv6(0x2001 << 112 | v4 << 64 | 0x8000 << 48 | public_teredo_client),
                    true,
                ),
                (
                    Transition::Isatap,
                    ipv6(public_prefix | 0x5efe << 32 | v4),
                    true,
                ),
                (
                    Transition::Isatap,
                    ipv6(public_prefix | 0x0200_5efe << 32 | v4),
                    true,
                ),
            ];
            for (form, ip, passes_public) in forms {
                if ip.is_unspecified() || ip.is_loopback() {
                    continue; // `::` and `::1` are not IPv4-compatible addresses.
                }
                let verdict = classify(IpAddr::V6(ip));
                match denied {
                    Some(block) => {
                        assert_eq!(verdict, Err(Denied::Carried { form, ipv4, block }), "{ip}")
                    }
                    None if passes_public => assert_eq!(verdict, Ok(()), "{ip}"),
                    None => assert!(matches!(verdict, Err(Denied::Block(_))), "{ip}"),
                }
            }
        }
    }

    #[test]
    fn embedded_ipv4_reads_each_form() {
        for (text, form, ipv4) in [
            ("::ffff:127.0.0.1", Transition::Mapped, "127.0.0.1"),
            ("::127.0.0.1", Transition::Compatible, "127.0.0.1"),
            ("2002:7f00:1:ffff::1", Transition::SixToFour, "127.0.0.1"),
            ("64:ff9b::127.0.0.1", Transition::Nat64, "127.0.0.1"),
            (
                "64:ff9b:1:ffff::127.0.0.1",
                Transition::Nat64Local,
                "127.0.0.1",
            ),
            // The client's address, not the server's (8.8.8.8).
            (
                "2001:0:808:808:8000:ffff:80ff:fffe",
                Transition::Teredo,
                "127.0.0.1",
            ),
            ("2600::5efe:127.0.0.1", Transition::Isatap, "127.0.0.1"),
            ("fe80::200:5efe:127.0.0.1", Transition::Isatap, "127.0.0.1"),
            // The prefix's reading comes first; `classify` checks the ISATAP one too.
            (
                "2002:808:808::5efe:127.0.0.1",
                Transition::SixToFour,
                "8.8.8.8",
            ),
        ] {
            let ip: Ipv6Addr = text.parse().unwrap();
            let expected = Some((form, ipv4.parse().unwrap()));
            assert_eq!(embedded_ipv4(ip), expected, "{text}");
        }
        for text in [
            "::",
            "::1",
            "2606:4700:4700::1111",
            "fe80::1",
            "::ffff:0:7f00:1",
        ] {
            assert_eq!(embedded_ipv4(text.parse().unwrap()), None, "{text}");
        }
    }

    /// Random IPv6 addresses pass only inside global unicast or as an IPv4-mapped or NAT64
    /// form, and never when std knows them as special.
    #[test]
    fn only_global_unicast_ipv6_passes() {
        let mut rng = rand::rng();
        let global_unicast = u128::from(Ipv6Addr::new(0x2000, 0, 0, 0, 0, 0, 0, 0));
        let edges = IPV6_DENIED.iter().flat_map(|block| {
            let IpAddr::V6(network) = block.network else {
                unreachable!("IPv6 table")
            };
            let first = u128::from(network);
            let last = first
                | u128::MAX
                    .checked_shr(u32::from(block.prefix_len))
                    .unwrap_or(0);
            [first, last]
        });
        let random = (0..20_000).flat_map(|_| {
            let bits: u128 = rng.random();
            [bits, global_unicast | bits >> 3]
        });
        for ip in random.map(ipv6).chain(edges.clone().map(ipv6)) {
            let verdict = classify(IpAddr::V6(ip));
            let special = ip.is_unspecified()
                || ip.is_loopback()
                || ip.is_multicast()
                || ip.is_unique_local()
                || ip.is_unicast_link_local();
            if special {
                assert!(verdict.is_err(), "{ip}");
            }
            let form = embedded_ipv4(ip).map(|(form, _)| form);
            if verdict.is_ok() && !matches!(form, Some(Transition::Mapped | Transition::Nat64)) {
                assert!(GLOBAL_UNICAST.contains(IpAddr::V6(ip)), "{ip}");
            }
        }
        for ip in edges.map(ipv6) {
            assert!(classify(IpAddr::V6(ip)).is_err(), "{ip}");
        }
    }

    #[test]
    fn denied_is_an_error_with_its_reason() {
        let error: Box<dyn std::error::Error> =
            Box::new(classify("::ffff:169.254.169.254".parse().unwrap()).unwrap_err());
        assert_eq!(
            error.to_string(),
            "IPv4-mapped IPv6 carrying 169.254.169.254: link-local (169.254.0.0/16, cloud metadata)"
        );
    }
}
