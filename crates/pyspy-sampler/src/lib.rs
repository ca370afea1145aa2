//! pyspy-sampler (stub)
