//! The eventshop read-model engine: the projection runner over the commit-safe global log,
//! checkpoints committed with each batch, read-model writers with history rows, rebuilds,
//! leases, and the order saga's process managers. May depend on `domain` and
//! `eventstore-config`. Not built yet: see the projector and saga issues.
#![forbid(unsafe_code)]
