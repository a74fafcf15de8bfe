//! Where a step runs: here, or inside a guest through a command prefix running
//! `phoenix-doctor agent`.

use crate::observe::Observation;
use crate::plan::Step;
use crate::probe::{self, ProbeCtx};
use std::future::Future;
use std::pin::Pin;

/// A boxed future, so runners can be trait objects.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Runs steps from their vantage. The engine calls it once per batch of ready steps that share
/// a vantage (`steps[i].from` is the same for every step in a call); it returns one observation
/// per step, in order.
pub trait Runner: Send + Sync {
    fn run<'a>(&'a self, steps: &'a [Step], ctx: &'a ProbeCtx) -> BoxFuture<'a, Vec<Observation>>;
}

/// Runs every step from this machine.
#[derive(Debug, Default, Clone)]
pub struct Local;

impl Runner for Local {
    fn run<'a>(&'a self, steps: &'a [Step], ctx: &'a ProbeCtx) -> BoxFuture<'a, Vec<Observation>> {
        Box::pin(async move {
            // The steps of a batch run concurrently; results come back in step order.
            let mut set = tokio::task::JoinSet::new();
            for (i, s) in steps.iter().enumerate() {
                let (s, ctx) = (s.clone(), ctx.clone());
                set.spawn(async move { (i, probe::run(&ctx, &s).await) });
            }
            let mut out: Vec<Option<Observation>> = vec![None; steps.len()];
            while let Some(r) = set.join_next().await {
                if let Ok((i, o)) = r {
                    out[i] = Some(o);
                }
            }
            out.into_iter()
                .zip(steps)
                .map(|(o, s)| {
                    o.unwrap_or_else(|| {
                        Observation::tool_error(&s.id, "probe", "the probe task panicked")
                    })
                })
                .collect()
        })
    }
}
