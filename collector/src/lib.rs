//! Osprey's node agent.
