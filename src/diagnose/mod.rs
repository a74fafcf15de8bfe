//! Intended versus observed: verdicts per step, findings with stable codes, the first divergence.
