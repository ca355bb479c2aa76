//! The web dashboard served by the Osprey server (built in a later issue).
