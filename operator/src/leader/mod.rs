//! Leader election on a `coordination.k8s.io/v1` Lease, and the etcd fence
//! that makes a deposed leader's writes fail.
//!
//! The Lease decides who *should* write and how fast a successor takes over;
//! the fence decides whose writes *can* commit. Every write transaction
//! compares the fence key's `mod_revision` with the revision of our claim,
//! so a replica that was frozen or partitioned past its Lease cannot write
//! even before it notices that it lost.

mod fence;
mod lease;

pub use fence::{
    FenceClaim, FenceError, FenceKey, claim as claim_fence, read_token as read_fence_token,
};
pub use lease::{LeaderHandle, Leadership, LeaseConfig, LeaseElector, default_identity};
