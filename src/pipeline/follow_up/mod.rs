//! The jobs that follow up on the pipeline: the coaches' daily digest and
//! the retention policy.

pub mod digest;
pub mod housekeeping;
