//! The network, as root: a namespace with a bridge (`<prefix>hub`) and one namespace per node
//! (`<prefix>n1`...), each joined to the bridge by a veth pair, on a private /24 no other run
//! uses. Nothing is routed anywhere else. Faults:
//!
//! - isolating a node: its veth's bridge end down (both directions, as `partition.rs` does);
//! - cutting a pair, or one direction of it: a blackhole route on the sending side (this machine
//!   has neither iptables nor nft, nor tc's netem or drop actions: `ip route` is what works);
//! - a flaky link: the bridge end taken down and up again at the schedule's offsets.
//!
//! Everything is deleted when the value is dropped, even after a failure half-way.

use crate::procs::must;
use anyhow::Result;
use std::collections::BTreeSet;
use std::path::PathBuf;

/// The namespaces of one run.
pub struct Net {
    prefix: String,
    /// The /24: `10.<a>.<b>.0`.
    subnet: (u8, u8),
    created: Vec<String>,
    /// Blackhole routes in place: (from, to).
    cuts: BTreeSet<(usize, usize)>,
    /// Links taken down.
    down: BTreeSet<usize>,
}

impl Net {
    /// Creates the namespaces for `nodes` nodes. `prefix` must be unique to the run.
    pub fn create(prefix: &str, nodes: usize, subnet: (u8, u8)) -> Result<Net> {
        let mut net = Net {
            prefix: prefix.to_string(),
            subnet,
            created: Vec::new(),
            cuts: BTreeSet::new(),
            down: BTreeSet::new(),
        };
        let hub = net.hub();
        must("ip", &["netns", "add", &hub])?;
        net.created.push(hub.clone());
        must("ip", &["-n", &hub, "link", "add", "br0", "type", "bridge"])?;
        must("ip", &["-n", &hub, "link", "set", "br0", "up"])?;
        for i in 0..nodes {
            let ns = net.ns(i);
            let outer = format!("h{}", i + 1);
            must("ip", &["netns", "add", &ns])?;
            net.created.push(ns.clone());
            must("ip", &["-n", &ns, "link", "add", "v0", "type", "veth", "peer", "name", &outer, "netns", &hub])?;
            must("ip", &["-n", &hub, "link", "set", &outer, "master", "br0", "up"])?;
            must("ip", &["-n", &ns, "addr", "add", &format!("{}/24", net.addr(i)), "dev", "v0"])?;
            must("ip", &["-n", &ns, "link", "set", "v0", "up"])?;
            must("ip", &["-n", &ns, "link", "set", "lo", "up"])?;
        }
        Ok(net)
    }

    fn hub(&self) -> String {
        format!("{}hub", self.prefix)
    }

    /// The namespace of node `i`.
    pub fn ns(&self, i: usize) -> String {
        format!("{}n{}", self.prefix, i + 1)
    }

    /// The file that names node `i`'s namespace, for setns(2).
    pub fn ns_file(&self, i: usize) -> PathBuf {
        PathBuf::from("/run/netns").join(self.ns(i))
    }

    /// Node `i`'s address.
    pub fn addr(&self, i: usize) -> String {
        format!("10.{}.{}.{}", self.subnet.0, self.subnet.1, i + 1)
    }

    /// Takes node `i`'s link down or brings it up again.
    pub fn link(&mut self, i: usize, up: bool) -> Result<()> {
        must("ip", &["-n", &self.hub(), "link", "set", &format!("h{}", i + 1), if up { "up" } else { "down" }])?;
        if up {
            self.down.remove(&i);
        } else {
            self.down.insert(i);
        }
        Ok(())
    }

    /// Drops (or stops dropping) what node `from` sends to node `to`.
    pub fn cut(&mut self, from: usize, to: usize, cut: bool) -> Result<()> {
        let route = format!("{}/32", self.addr(to));
        if cut {
            if self.cuts.insert((from, to)) {
                must("ip", &["-n", &self.ns(from), "route", "add", "blackhole", &route])?;
            }
        } else if self.cuts.remove(&(from, to)) {
            must("ip", &["-n", &self.ns(from), "route", "del", "blackhole", &route])?;
        }
        Ok(())
    }

    /// Every link up, every cut removed.
    pub fn heal(&mut self) -> Result<()> {
        for i in std::mem::take(&mut self.down) {
            self.link(i, true)?;
        }
        for (from, to) in self.cuts.clone() {
            self.cut(from, to, false)?;
        }
        Ok(())
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for ns in self.created.iter().rev() {
            if let Err(e) = must("ip", &["netns", "del", ns]) {
                eprintln!("halo-chaos: could not delete namespace {ns}: {e}");
            }
        }
    }
}
