//! The syscall pipeline. Collector: [`source`] (eBPF capture or replay) ->
//! [`batcher`] (self-contained per-process batches). Compute: [`buffer`]
//! (windows -> inference batches) -> [`classifier`] (own thread) -> alert;
//! [`baseline`] (host profiles) -> alert.

pub mod baseline;
pub mod batcher;
pub mod buffer;
pub mod classifier;
pub mod processes;
pub mod source;
