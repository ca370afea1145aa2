//! pyspy-binary (stub)
