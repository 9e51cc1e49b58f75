//! The data path, one stage a module: intake → detect → review and casework
//! → dispatch → channels → send log → replies back, and the follow-up jobs.

pub mod casework;
pub mod coaches;
pub mod conversation;
pub mod delivery;
pub mod detect;
pub mod dispatch;
pub mod follow_up;
pub mod inbox;
pub mod intake;
pub mod replies;
pub mod reports;
pub mod review;
pub mod tokens;
pub mod unsubscribe;
