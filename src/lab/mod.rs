//! The simulated Phoenix platform on loopback, with the platform's real faults.
