//! Alert rules, their evaluation and notifications (built in a later issue).

pub mod detect;
