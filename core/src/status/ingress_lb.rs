//! The addresses written to `status.loadBalancer.ingress` of served Ingresses.

use std::net::IpAddr;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::IngressLoadBalancerIngress;

use crate::model::ObjectKey;

/// Where the addresses come from (`--ingress-publish-service` or
/// `--ingress-status-address`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadBalancerSource {
    PublishService(ObjectKey),
    Addresses(Vec<String>),
}

/// An address as an LB ingress entry: IPs go to `ip`, names to `hostname`.
pub fn entry(address: &str) -> IngressLoadBalancerIngress {
    if address.parse::<IpAddr>().is_ok() {
        IngressLoadBalancerIngress {
            ip: Some(address.to_string()),
            ..Default::default()
        }
    } else {
        IngressLoadBalancerIngress {
            hostname: Some(address.to_string()),
            ..Default::default()
        }
    }
}

/// The publish Service's addresses: its load balancer's, else its external IPs.
pub fn service_addresses(service: &Service) -> Vec<IngressLoadBalancerIngress> {
    let from_lb: Vec<IngressLoadBalancerIngress> = service
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|i| i.ip.as_deref().or(i.hostname.as_deref()).map(entry))
        .collect();
    if !from_lb.is_empty() {
        return from_lb;
    }
    service
        .spec
        .as_ref()
        .and_then(|s| s.external_ips.as_ref())
        .into_iter()
        .flatten()
        .map(|ip| entry(ip))
        .collect()
}

/// What the served Ingresses' status should say; `None` when unknown (the
/// publish Service is not there yet), in which case nothing is written.
pub fn desired_lb(
    source: &LoadBalancerSource,
    publish_service_lb: Option<&Vec<IngressLoadBalancerIngress>>,
) -> Option<Vec<IngressLoadBalancerIngress>> {
    let mut entries = match source {
        LoadBalancerSource::Addresses(addresses) => addresses.iter().map(|a| entry(a)).collect(),
        LoadBalancerSource::PublishService(_) => publish_service_lb?.clone(),
    };
    entries.sort_by(|a, b| (&a.ip, &a.hostname).cmp(&(&b.ip, &b.hostname)));
    entries.dedup();
    Some(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_become_sorted_ip_or_hostname_entries() {
        let source = LoadBalancerSource::Addresses(vec![
            "lb.example.com".into(),
            "192.0.2.1".into(),
            "192.0.2.1".into(),
        ]);
        let lb = desired_lb(&source, None).unwrap();
        assert_eq!(lb.len(), 2);
        assert_eq!(lb[0].hostname.as_deref(), Some("lb.example.com"));
        assert_eq!(lb[1].ip.as_deref(), Some("192.0.2.1"));
        let publish = LoadBalancerSource::PublishService(ObjectKey::new("ns", "gw"));
        assert_eq!(desired_lb(&publish, None), None);
    }
}
