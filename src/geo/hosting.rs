//! Which networks are hosting providers when a database does not say.
//!
//! MaxMind's GeoLite2-ASN database names the autonomous system behind an
//! address but not what kind of network it is. sessionrange fills the gap in
//! two ways: a GeoIP2-Connection-Type style `connection_type` field, when a
//! record carries one, and otherwise this list of ASNs that belong to cloud
//! and hosting providers.

use crate::network::NetworkClass;

/// A well-known hosting or cloud provider's autonomous system.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostingAsn {
    /// The autonomous system number.
    pub asn: u32,
    /// Who operates it.
    pub operator: &'static str,
}

const fn hosting(asn: u32, operator: &'static str) -> HostingAsn {
    HostingAsn { asn, operator }
}

/// ASNs whose addresses are treated as [`NetworkClass::Datacenter`] when a
/// record declares no class of its own. Sorted by number.
///
/// Cloudflare (AS13335) is on the list on purpose: its addresses are edges,
/// Workers and WARP egress, so a request from one has always been relayed.
/// Google's AS15169 is here too: besides Google's own services it still
/// carries some Google Cloud traffic (most of which is AS396982 today).
/// Google Fiber (AS16591) is residential and is not listed.
pub const HOSTING_ASNS: &[HostingAsn] = &[
    hosting(8075, "Microsoft Corporation (Azure)"),
    hosting(8100, "QuadraNet Enterprises LLC"),
    hosting(8560, "IONOS SE"),
    hosting(8987, "Amazon Data Services Ireland Ltd"),
    hosting(9009, "M247 Ltd"),
    hosting(12876, "Scaleway S.A.S."),
    hosting(13335, "Cloudflare, Inc."),
    hosting(14061, "DigitalOcean, LLC"),
    hosting(14618, "Amazon.com, Inc. (AMAZON-AES)"),
    hosting(15169, "Google LLC"),
    hosting(16276, "OVH SAS"),
    hosting(16509, "Amazon.com, Inc. (AMAZON-02)"),
    hosting(20473, "The Constant Company, LLC (Vultr)"),
    hosting(24940, "Hetzner Online GmbH"),
    hosting(28753, "Leaseweb Deutschland GmbH"),
    hosting(30633, "Leaseweb USA, Inc."),
    hosting(31898, "Oracle Corporation (Oracle Cloud)"),
    hosting(36351, "IBM Cloud (SoftLayer Technologies)"),
    hosting(36352, "ColoCrossing"),
    hosting(
        37963,
        "Hangzhou Alibaba Advertising Co., Ltd. (Alibaba Cloud)",
    ),
    hosting(
        45090,
        "Shenzhen Tencent Computer Systems Company Limited (Tencent)",
    ),
    hosting(45102, "Alibaba (US) Technology Co., Ltd."),
    hosting(46606, "Unified Layer"),
    hosting(51167, "Contabo GmbH"),
    hosting(60068, "Datacamp Limited (CDN77)"),
    hosting(60781, "Leaseweb Netherlands B.V."),
    hosting(63949, "Akamai Connected Cloud (Linode)"),
    hosting(
        132203,
        "Shenzhen Tencent Computer Systems Company Limited (Tencent Cloud)",
    ),
    hosting(136907, "Huawei Clouds"),
    hosting(141995, "Contabo Asia Private Limited"),
    hosting(197540, "netcup GmbH"),
    hosting(212317, "Hetzner Online GmbH (cloud, US and Singapore)"),
    hosting(213230, "Hetzner Online GmbH (Hetzner Cloud)"),
    hosting(396982, "Google LLC (Google Cloud Platform)"),
];

/// The class a GeoIP2-Connection-Type `connection_type` value implies.
///
/// `Cellular` is mobile and `Corporate` corporate; `Cable/DSL`, `Dialup`
/// and `Satellite` are consumer access, so residential. Anything else,
/// including a value MaxMind adds later, implies nothing.
pub fn class_for_connection_type(connection_type: &str) -> Option<NetworkClass> {
    match connection_type {
        "Cable/DSL" | "Dialup" | "Satellite" => Some(NetworkClass::Residential),
        "Cellular" => Some(NetworkClass::Mobile),
        "Corporate" => Some(NetworkClass::Corporate),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosting_list_is_sorted_without_duplicates() {
        let numbers: Vec<u32> = HOSTING_ASNS.iter().map(|h| h.asn).collect();
        assert!(numbers.windows(2).all(|w| w[0] < w[1]), "{numbers:?}");
    }

    #[test]
    fn hosting_list_covers_the_major_clouds() {
        for asn in [
            16509, 14618, 396982, 8075, 14061, 24940, 16276, 63949, 31898,
        ] {
            assert!(HOSTING_ASNS.iter().any(|h| h.asn == asn), "AS{asn} missing");
        }
        assert!(
            !HOSTING_ASNS.iter().any(|h| h.asn == 7922),
            "Comcast is residential"
        );
    }

    #[test]
    fn connection_types_map_to_classes() {
        assert_eq!(
            class_for_connection_type("Cellular"),
            Some(NetworkClass::Mobile)
        );
        assert_eq!(
            class_for_connection_type("Corporate"),
            Some(NetworkClass::Corporate)
        );
        assert_eq!(
            class_for_connection_type("Cable/DSL"),
            Some(NetworkClass::Residential)
        );
        assert_eq!(class_for_connection_type("cellular"), None);
        assert_eq!(class_for_connection_type(""), None);
    }
}
