//! The syscall pipeline. Collector: [`source`] (eBPF capture or replay) ->
//! [`batcher`] (self-contained per-process batches). Compute: [`buffer`]
//! (windows -> inference batches) -> [`classifier`] (own thread) -> alert.

pub mod batcher;
pub mod buffer;
pub mod classifier;
pub mod processes;
pub mod source;
