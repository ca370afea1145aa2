//! pyspy-cpython (stub)
