//! Where a step runs: here, or inside a guest through a command prefix running
//! `phoenix-doctor agent`.
