//! The front-end's static files, embedded at build time (see `build.rs`).
