//! Naming cgroups (placeholder until the module lands).
