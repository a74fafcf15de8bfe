//! Static cross-checks on the intended state alone, one function per rule.
