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
            let mut out = Vec::with_capacity(steps.len());
            for s in steps {
                out.push(probe::run(ctx, s).await);
            }
            out
        })
    }
}
