//! Clone chains (`clone_from_ctid`, `clone_from_vmid`): what a guest inherits from the nearest
//! source up its chain, and the chains that loop back on themselves. One memoized walk over all
//! guests of a kind: every guest is visited once, every cycle found once.

use crate::config::{GuestKind, Provenance, RawGuest};
use crate::observe::VantageRef;
use serde::Serialize;
use std::collections::HashMap;

/// The key that names a guest's clone source.
pub fn clone_key(kind: GuestKind) -> &'static str {
    match kind {
        GuestKind::Lxc => "clone_from_ctid",
        GuestKind::Vm => "clone_from_vmid",
    }
}

/// The result of [`walk`] over one list of guests (indices into that list).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Chains {
    /// For each guest, the nearest guest up its clone chain (itself excluded) that has the
    /// property, stopping where the chain ends, names a missing guest, or comes back to a
    /// guest already passed.
    pub nearest: Vec<Option<usize>>,
    /// Every cycle once, in chain order (each clones the next, the last clones the first),
    /// starting from its member that comes first in the file.
    pub cycles: Vec<Vec<usize>>,
}

/// Walk every clone chain of `list` once. A `clone_from` id names the first guest of the list
/// with that id, as the platform's `jq` lookups do.
pub fn walk(list: &[RawGuest], has: impl Fn(&RawGuest) -> bool) -> Chains {
    let mut by_id: HashMap<u32, usize> = HashMap::with_capacity(list.len());
    for (i, g) in list.iter().enumerate() {
        by_id.entry(g.id.value).or_insert(i);
    }
    let parent: Vec<Option<usize>> = list
        .iter()
        .map(|g| {
            g.clone_from
                .as_ref()
                .and_then(|p| by_id.get(&p.value).copied())
        })
        .collect();
    let has: Vec<bool> = list.iter().map(has).collect();
    walk_parents(&parent, &has)
}

#[derive(Clone, Copy, PartialEq)]
enum State {
    New,
    OnPath,
    Done,
}

/// [`walk`] over a parent function: `parent[i]` is the guest `i` clones.
fn walk_parents(parent: &[Option<usize>], has: &[bool]) -> Chains {
    let n = parent.len();
    let mut state = vec![State::New; n];
    let mut nearest: Vec<Option<usize>> = vec![None; n];
    let mut cycles = Vec::new();
    // The nearest guest with the property, seen from a child of `p`.
    let via = |p: usize, nearest: &[Option<usize>]| if has[p] { Some(p) } else { nearest[p] };
    let mut path: Vec<usize> = Vec::new();
    for start in 0..n {
        if state[start] != State::New {
            continue;
        }
        path.clear();
        let mut cur = start;
        // Follow the chain until it ends, reaches a resolved guest, or loops.
        let cycle_at = loop {
            match state[cur] {
                State::Done => break None,
                State::OnPath => break path.iter().position(|&x| x == cur),
                State::New => {}
            }
            state[cur] = State::OnPath;
            path.push(cur);
            match parent[cur] {
                Some(p) => cur = p,
                None => break None,
            }
        };
        let tail_len = match cycle_at {
            Some(k) => {
                let cycle = &path[k..];
                // Around the loop, the answer for a member is its parent if that has the
                // property, else the parent's answer; start just behind a member with it.
                if let Some(j) = cycle.iter().position(|&x| has[x]) {
                    let m = cycle.len();
                    for step in 1..=m {
                        let x = cycle[(j + m - step) % m];
                        let p = cycle[(j + m - step + 1) % m];
                        // Coming back to `x` itself ends its walk with nothing found.
                        nearest[x] = via(p, &nearest).filter(|&a| a != x);
                    }
                }
                let first = (0..cycle.len())
                    .min_by_key(|&i| cycle[i])
                    .unwrap_or_default();
                let mut c = cycle[first..].to_vec();
                c.extend_from_slice(&cycle[..first]);
                cycles.push(c);
                k
            }
            None => path.len(),
        };
        for &x in path[..tail_len].iter().rev() {
            nearest[x] = parent[x].and_then(|p| via(p, &nearest));
        }
        for &x in &path {
            state[x] = State::Done;
        }
    }
    Chains { nearest, cycles }
}

/// A clone chain that loops back on itself.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CloneCycle {
    /// The guests of the loop in chain order: each clones the next, the last clones the first.
    pub members: Vec<VantageRef>,
    /// Each member's `clone_from_ctid` / `clone_from_vmid`, in the same order.
    pub provenance: Vec<Provenance>,
}

/// The cycles of one list of guests as model values.
pub(crate) fn cycles(list: &[RawGuest], chains: &Chains) -> Vec<CloneCycle> {
    chains
        .cycles
        .iter()
        .map(|c| CloneCycle {
            members: c
                .iter()
                .map(|&i| match list[i].kind {
                    GuestKind::Lxc => VantageRef::Lxc(list[i].id.value),
                    GuestKind::Vm => VantageRef::Vm(list[i].id.value),
                })
                .collect(),
            provenance: c
                .iter()
                .filter_map(|&i| list[i].clone_from.as_ref().map(|v| v.prov.clone()))
                .collect(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition, walked naively: from `x`, follow parents, skip guests already passed
    /// (`x` included), return the first with the property.
    fn naive(parent: &[Option<usize>], has: &[bool], x: usize) -> Option<usize> {
        let mut seen = vec![x];
        let mut cur = x;
        while let Some(p) = parent[cur] {
            if seen.contains(&p) {
                return None;
            }
            if has[p] {
                return Some(p);
            }
            seen.push(p);
            cur = p;
        }
        None
    }

    fn check_against_naive(parent: &[Option<usize>], has: &[bool]) -> Chains {
        let c = walk_parents(parent, has);
        for x in 0..parent.len() {
            assert_eq!(
                c.nearest[x],
                naive(parent, has, x),
                "guest {x} of {parent:?}"
            );
        }
        c
    }

    #[test]
    fn a_long_chain_into_a_cycle_is_reported_once_and_terminates() {
        // 0 clones 1, 1 clones 2, ... 4999 clones 4990: a tail of 4990 into a loop of 10.
        let n = 5000;
        let parent: Vec<Option<usize>> = (0..n)
            .map(|i| Some(if i + 1 < n { i + 1 } else { n - 10 }))
            .collect();
        let c = walk_parents(&parent, &vec![false; n]);
        assert_eq!(c.cycles, vec![(n - 10..n).collect::<Vec<_>>()]);
        assert!(c.nearest.iter().all(|a| a.is_none()));
    }

    #[test]
    fn inheritance_follows_the_nearest_source_and_stops_at_the_loop() {
        // 0 → 1 → 2(has) → 3 → 4 → 3 ; 5 → 6(has) → 7 → 5 ; 8 → missing ; 9(has) alone.
        let parent = [
            Some(1),
            Some(2),
            Some(3),
            Some(4),
            Some(3),
            Some(6),
            Some(7),
            Some(5),
            None,
            None,
        ];
        let has = [
            false, false, true, false, false, false, true, false, false, true,
        ];
        let c = check_against_naive(&parent, &has);
        assert_eq!(c.nearest[0], Some(2));
        assert_eq!(c.nearest[1], Some(2));
        assert_eq!(c.nearest[2], None, "3 and 4 loop without a source");
        // Inside a loop with a source every member inherits from the next source around it.
        assert_eq!(c.nearest[5], Some(6));
        assert_eq!(c.nearest[7], Some(6));
        assert_eq!(c.nearest[6], None, "6 comes back to itself first");
        assert_eq!(c.cycles, vec![vec![3, 4], vec![5, 6, 7]]);
    }

    #[test]
    fn every_small_parent_function_agrees_with_the_naive_walk() {
        // All parent functions on 4 guests (each: none or one of 4) with two property masks.
        let n = 4usize;
        for code in 0..5usize.pow(n as u32) {
            let parent: Vec<Option<usize>> = (0..n)
                .map(|i| match (code / 5usize.pow(i as u32)) % 5 {
                    0 => None,
                    p => Some(p - 1),
                })
                .collect();
            for mask in [0b0000, 0b0101, 0b1000, 0b1111] {
                let has: Vec<bool> = (0..n).map(|i| mask & (1 << i) != 0).collect();
                let c = check_against_naive(&parent, &has);
                // Each cycle once: no guest in two cycles, and each is a real loop.
                let mut members: Vec<usize> = c.cycles.iter().flatten().copied().collect();
                let total = members.len();
                members.sort();
                members.dedup();
                assert_eq!(members.len(), total, "{parent:?}: {:?}", c.cycles);
                for cy in &c.cycles {
                    for (k, &x) in cy.iter().enumerate() {
                        assert_eq!(parent[x], Some(cy[(k + 1) % cy.len()]));
                    }
                }
            }
        }
    }
}
