//! The egress classifier, reached two ways.
//!
//! The input as an endpoint URL: parsing and the literal-host check never panic, and the
//! URL as stored (its text, parsed again) names the same address and gets the same
//! verdict. Its first bytes as an address, written in every spelling a URL accepts
//! (dotted, one decimal or hexadecimal number, octal parts, trailing dots, IPv6 and
//! IPv4-mapped IPv6): each spelling names the same address and gets the same verdict, and
//! an IPv4-mapped address is allowed exactly when its IPv4 is.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use herald::domain::Endpoint;
use herald::egress::address::{classify, literal_host};
use herald::egress::{EgressConfig, EgressPolicy};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    // The stock policy: no allow-list and no listening sockets of its own, so nothing but
    // the classifier decides.
    let policy = EgressPolicy::new(&EgressConfig::default(), Vec::new());
    let text = String::from_utf8_lossy(input);
    if let Ok(url) = Endpoint::parse_url(&text) {
        // An endpoint's URL is stored as text and parsed again for every attempt, which
        // checks it again: the address it names, and so the verdict, must not change.
        let verdict = policy.check_literal(&url);
        let stored = url::Url::parse(url.as_str())
            .unwrap_or_else(|e| panic!("{url} does not parse again: {e}"));
        assert_eq!(literal_host(&stored), literal_host(&url), "{url}");
        assert_eq!(policy.check_literal(&stored), verdict, "{url}");
    }
    if let Some(octets) = input.first_chunk::<16>() {
        spellings(&policy, IpAddr::V6(Ipv6Addr::from(*octets)));
    }
    if let Some(octets) = input.first_chunk::<4>() {
        let v4 = Ipv4Addr::from(*octets);
        spellings(&policy, IpAddr::V4(v4));
        let mapped = IpAddr::V6(v4.to_ipv6_mapped());
        assert_eq!(
            classify(mapped).is_ok(),
            classify(IpAddr::V4(v4)).is_ok(),
            "{mapped} and {v4} differ"
        );
    }
});

/// Every spelling of `ip` in a URL names `ip` and gets its verdict.
fn spellings(policy: &EgressPolicy, ip: IpAddr) {
    let verdict = policy.check(ip, Some(443));
    let forms = match ip {
        IpAddr::V4(v4) => {
            let n = u32::from(v4);
            let [a, b, c, d] = v4.octets();
            vec![
                v4.to_string(),
                n.to_string(),
                format!("{n:#x}"),
                format!("{a:#o}.{b:#o}.{c:#o}.{d:#o}").replace("0o", "0"),
                format!("{a}.{}", n & 0x00ff_ffff),
                format!("{v4}."),
                format!("{v4}.."),
                format!("[{}]", v4.to_ipv6_mapped()),
            ]
        }
        IpAddr::V6(v6) => vec![format!("[{v6}]")],
    };
    for host in forms {
        let spelled = format!("https://{host}/hook");
        let url = Endpoint::parse_url(&spelled)
            .unwrap_or_else(|e| panic!("{spelled} does not parse: {e:?}"));
        let named = literal_host(&url).unwrap_or_else(|| panic!("{spelled} names no address"));
        assert_eq!(named.to_canonical(), ip.to_canonical(), "{spelled}");
        assert_eq!(policy.check_literal(&url), verdict, "{spelled}");
    }
}
