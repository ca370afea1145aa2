//! pyspy-process (stub)
