//! The intended state derived from the configs: nodes, DNS records, Traefik routes, firewall,
//! certificates and stacks, each value with its provenance.
